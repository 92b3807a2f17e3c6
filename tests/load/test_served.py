"""forest_mlops.load.served against a real Prometheus holding a known load run (backfilled: see
tests/support/prometheus.py): the count, rate and p99 are those of the run's requests only,
whatever the series held before it, and a label set born during the run still counts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from forest_mlops.load import served
from tests.support.prometheus import backfilled

STEP = 15
RATE = 20  # requests a second during the run
RUN_S = 120
NAME = "forest_inference_request_duration_seconds"
EDGES = ("0.005", "0.01", "0.025", "0.05", "0.5", "+Inf")


def buckets(fast: int, slow: int, before: int) -> dict[str, int]:
    """Cumulative bucket counts: `fast` requests within 10 ms, `slow` within 50 ms, and
    `before` (older requests) within 500 ms."""
    edges = dict.fromkeys(EDGES, 0)
    for le in ("0.01", "0.025", "0.05", "0.5", "+Inf"):
        edges[le] += fast
    for le in ("0.05", "0.5", "+Inf"):
        edges[le] += slow
    for le in ("0.5", "+Inf"):
        edges[le] += before
    return edges


def earlier(ts: int, start: int) -> int:
    """Slow requests version 3 answered before the run: 1,000, then an earlier load of 10 a
    second that ended 10 s before the run started."""
    return 1000 + 10 * min(max(ts - (start - 130), 0), 120)


def openmetrics(start: int) -> str:
    """Version 3 answered slow requests before the run (earlier()), then the first half of the
    run's; version 4 appears half-way and answers the second half. 99 % of the run's requests
    take at most 10 ms: its p99 is 10 ms exactly (the edge), the history's 500 ms."""
    counters, histogram = [], []
    half = RUN_S // 2
    for ts in range(start - 300, start + RUN_S + 300, STEP):
        elapsed = min(max(ts - start, 0), RUN_S)
        per_version = {
            "3": (earlier(ts, start), RATE * min(elapsed, half)),
            "4": (0, RATE * max(elapsed - half, 0)),
        }
        for version, (before, during) in per_version.items():
            if version == "4" and ts < start + half:
                continue  # the series is born with the rollout
            labels = f'endpoint="/predict",method="POST",status="200",model_version="{version}"'
            counters.append(f"forest_inference_requests_total{{{labels}}} {before + during} {ts}")
            slow = during // 100
            for le, count in buckets(during - slow, slow, before).items():
                histogram.append(f'{NAME}_bucket{{{labels},le="{le}"}} {count} {ts}')
    return "\n".join(
        [
            "# TYPE forest_inference_requests counter",
            *counters,
            f"# TYPE {NAME} histogram",
            *histogram,
            "# EOF",
            "",
        ]
    )


@pytest.fixture(scope="module")
def run_start() -> int:
    return (int(time.time()) - 900) // STEP * STEP


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, run_start: int) -> Iterator[str]:
    with backfilled(tmp_path_factory.mktemp("prometheus"), openmetrics(run_start)) as url:
        yield url


def record(start: float, **figures: float) -> dict[str, float]:
    """What summary.result writes for a run (the keys served and comparison read)."""
    base = {
        "target_rate_per_s": RATE, "achieved_rate_per_s": RATE, "requests": RATE * RUN_S,
        "failures": 0, "p50_ms": 4, "p95_ms": 9, "p99_ms": 11, "measured_s": RUN_S,
        "started_at": start, "ended_at": start + RUN_S,
    }  # fmt: skip
    return base | figures


def test_the_runs_requests_only_across_a_version_born_during_it(prometheus, run_start):
    found = served.served(prometheus, record(run_start))
    # Not one of the earlier load's, which ended 10 s before the run.
    assert found["requests"] == RATE * RUN_S
    assert found["rate_per_s"] == RATE
    # The slow requests before the run would put the p99 in the 500 ms bucket.
    assert found["p99_ms"] == pytest.approx(10.0)
    assert found["window"].startswith(f"{RUN_S + served.SCRAPE_MARGIN_S} s ending ")


def test_comparison_sets_locust_beside_the_service(prometheus, run_start):
    run = record(run_start, p99_ms=11, achieved_rate_per_s=19.0)
    seen = served.comparison(run, served.served(prometheus, run))
    assert seen["locust"]["p99_ms"] == 11 and seen["prometheus"]["p99_ms"] == pytest.approx(10)
    assert seen["p99_relative_error"] == pytest.approx(1 / 11, abs=1e-3)
    assert seen["rate_relative_error"] == pytest.approx(1 / 19, abs=1e-3)


def test_a_window_without_requests_is_an_error(prometheus, run_start):
    with pytest.raises(LookupError, match="no /predict requests"):
        served.served(prometheus, record(run_start - 3600))
