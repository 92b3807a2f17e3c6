"""What the inference service itself recorded during a load run, as Prometheus holds it, set
beside Locust's figures for the same requests (`make load`, `make e2e`).

Prometheus' figures are the counters' differences across the run (`x - x offset N`, from the
last sample before its first request to the first sample after its last answer), so both sides
describe the same requests; rate() and increase() would extrapolate at the window's edges.
Nothing else must post to /predict meanwhile: requests answered between that last scrape and
the run's start count too, which is why the window does not reach back further than the start
(with 20 s before it, as at first, a second `make load` right after another counted the end of
the first: 13 % more requests than Locust's).

The differences are taken series by series, each pod's own, before they are summed: a series
born during the run (a pod that replaced another, a new model version) counts whole, one whose
counter was reset (its container restarted) counts from the reset, and the series of a pod gone
before the end count for nothing. Summed first, as at first, a run started right after a
rollout subtracted the old pod's whole history from the new pod's run: -4 requests for 2,390.

The two p99s time nearly the same span: Locust's from its sending to its reading the answer, the
service's histogram from the kernel's receipt of the request's bytes to the app's last response
message (inference_api.arrival, inference_api.metrics). What only Locust's holds is the network
and the client's own waits (bench/load_floor.py measures the client's floor alone).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from forest_mlops.monitoring.prometheus_query import scalar

PREDICT = 'forest_inference_requests_total{endpoint="/predict"}'
PREDICT_BUCKETS = 'forest_inference_request_duration_seconds_bucket{endpoint="/predict"}'
# A scrape interval (the chart's 15 s) and some: the first sample after the run has every
# request in it. (The last sample at or before the run's start has none of them: instant
# queries look back to it.)
SCRAPE_MARGIN_S = 20
LOCUST_KEYS = (
    "target_rate_per_s",
    "achieved_rate_per_s",
    "requests",
    "failures",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "measured_s",
)


def ready_at(record: Mapping[str, Any]) -> float:
    """Epoch time after which Prometheus holds a sample with the whole run in it."""
    return float(record["ended_at"]) + SCRAPE_MARGIN_S


def during(counter: str, span: int) -> str:
    """PromQL: each series of `counter` less its value `span` seconds earlier; its whole value
    where it had none then (born since) or where it went down since (reset: its container
    restarted). resets() looks back a scrape interval further than `span`, to the sample the
    offset reads: Prometheus 3's ranges leave out their first instant, and a counter that grew
    back past its old value would otherwise count only the difference."""
    restarted = f"resets({counter}[{span + SCRAPE_MARGIN_S}s]) > 0"
    return f"(({counter} - {counter} offset {span}s) unless ({restarted})) or {counter}"


def served(url: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Prometheus' count, rate and p99 of the /predict requests of the run `record` describes
    (summary.result's keys), queried at ready_at(record)."""
    at = ready_at(record)
    span = math.ceil(at - float(record["started_at"]))
    requests = scalar(url, f"sum({during(PREDICT, span)})", at)
    p99 = scalar(
        url, f"histogram_quantile(0.99, sum by (le) ({during(PREDICT_BUCKETS, span)}))", at
    )
    # What a dashboard showed at the end of the load (informative: rate() extrapolates).
    shown = scalar(url, f"sum(rate({PREDICT}[1m]))", float(record["ended_at"]) - 5)
    if requests is None or p99 is None:
        raise LookupError(
            f"Prometheus holds no /predict requests between {record['started_at']} and {at}"
        )
    return {
        "requests": round(requests),
        "rate_per_s": round(requests / float(record["measured_s"]), 2),
        "p99_ms": round(1000 * p99, 2),
        "rate_1m_at_end_per_s": None if shown is None else round(shown, 2),
        "window": f"{span} s ending {at:.0f}",
    }


def comparison(record: Mapping[str, Any], prometheus: Mapping[str, Any]) -> dict[str, Any]:
    """Locust's figures beside Prometheus' (served()) and how far apart they are."""
    achieved, p99 = float(record["achieved_rate_per_s"]), float(record["p99_ms"])
    return {
        "locust": {key: record[key] for key in LOCUST_KEYS},
        "prometheus": dict(prometheus),
        "rate_relative_error": round(abs(prometheus["rate_per_s"] - achieved) / achieved, 3),
        "p99_relative_error": round(abs(prometheus["p99_ms"] - p99) / p99, 3),
    }
