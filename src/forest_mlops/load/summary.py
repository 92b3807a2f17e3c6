"""Locust's figures as the load test reports them, and their way out of the Job.

The locustfile prints one line, `RESULT_TAG` followed by JSON, when Locust quits; the pod's log
is the only output a Job keeps without a volume, so `parse_log` finds that line among Locust's
own log lines. `result` turns it into bench/results/load-cluster.json's record. Standard library
only: the load image and the CLI both import it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

RESULT_TAG = "FOREST_LOAD_RESULT "
# Each simulated user sends at most this many requests a second. A user sends its next request
# when the previous one is answered or when it falls due, whichever is later (the locustfile's
# schedule), so it holds its rate while its answers take less than 1/rate on average: at 1
# request/s, answers up to 1 s, far above inference's p99 (tens of ms), at the cost of one
# greenlet per request/s.
MAX_RATE_PER_USER = 1.0
# The summary's keys, as the locustfile writes them.
SUMMARY_KEYS = (
    "target_rate_per_s",
    "users",
    "requests",
    "failures",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "started_at",
    "ended_at",
    "errors",
)


class LoadSummaryError(ValueError):
    """The log holds no (or a malformed) summary: Locust did not reach its end."""


def users_for(rate: float) -> int:
    """How many users hold `rate` requests/s, each at most MAX_RATE_PER_USER."""
    if not rate > 0:
        raise ValueError(f"the target rate must be positive, got {rate}")
    return max(1, math.ceil(rate / MAX_RATE_PER_USER))


def summary_line(summary: Mapping[str, Any]) -> str:
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise LoadSummaryError(f"summary lacks {missing}")
    return RESULT_TAG + json.dumps(dict(summary), sort_keys=True)


def parse_log(text: str) -> dict[str, Any]:
    """The summary line of a Job's log (the last one, should the log hold several)."""
    lines = [line for line in text.splitlines() if line.startswith(RESULT_TAG)]
    if not lines:
        tail = "\n".join(text.splitlines()[-20:])
        raise LoadSummaryError(f"no {RESULT_TAG.strip()} line in the log; its end:\n{tail}")
    try:
        summary = json.loads(lines[-1][len(RESULT_TAG) :])
    except json.JSONDecodeError as exc:
        raise LoadSummaryError(f"malformed summary line: {lines[-1][:200]}") from exc
    if not isinstance(summary, dict):
        raise LoadSummaryError(f"the summary is not an object: {lines[-1][:200]}")
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise LoadSummaryError(f"summary lacks {missing}: {lines[-1][:200]}")
    return summary


def result(summary: Mapping[str, Any], **context: Any) -> dict[str, Any]:
    """The record written to bench/results/load-cluster.json: Locust's figures, the achieved
    rate over the window it measured (first request to last answer), and `context` (cluster,
    image, duration asked for ...)."""
    started, ended = float(summary["started_at"]), float(summary["ended_at"] or 0.0)
    window = ended - started
    requests = int(summary["requests"])
    return {
        "benchmark": "load_cluster",
        **context,
        "target_rate_per_s": float(summary["target_rate_per_s"]),
        "achieved_rate_per_s": round(requests / window, 2) if window > 0 else 0.0,
        "users": int(summary["users"]),
        "requests": requests,
        "failures": int(summary["failures"]),
        "errors": list(summary["errors"]),
        "p50_ms": summary["p50_ms"],
        "p95_ms": summary["p95_ms"],
        "p99_ms": summary["p99_ms"],
        "max_ms": summary["max_ms"],
        # UTC epoch seconds: the window to query Prometheus over.
        "started_at": round(started, 3),
        "ended_at": round(ended, 3),
        "measured_s": round(window, 2),
    }
