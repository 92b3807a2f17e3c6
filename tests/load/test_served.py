"""forest_mlops.load.served against a real Prometheus holding known load runs (backfilled: see
tests/support/prometheus.py): the count, rate and p99 are those of the run's requests only,
whatever the series held before it, a label set born during the run still counts, and so do the
requests of a pod that replaced another just before the run or restarted at its start.

Backfilled blocks carry no staleness markers, which a live Prometheus writes when a pod's
target goes away; the server here looks back 1 minute instead of 5 (--query.lookback-delta),
so that a series which stopped before the run ended is absent at the end, as a gone pod's is."""

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
# The three runs: the main one at run_start, the others this much earlier (each run's series
# end 5 minutes after it, long before the next begins).
ROLLOUT_BEFORE_S = 1800
RESTART_BEFORE_S = 2700


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


def sample(pod: str, version: str, ts: int, before: int, during: int) -> list[str]:
    """One scrape of one pod's /predict series: `before` slow requests of its history and
    `during` of the run's, 1 in 100 of those slow (so the run's p99 is 10 ms exactly)."""
    labels = f'endpoint="/predict",method="POST",status="200",model_version="{version}",pod="{pod}"'
    slow = during // 100
    return [
        f"forest_inference_requests_total{{{labels}}} {before + during} {ts}",
        *(
            f'{NAME}_bucket{{{labels},le="{le}"}} {count} {ts}'
            for le, count in buckets(during - slow, slow, before).items()
        ),
    ]


def earlier(ts: int, start: int) -> int:
    """Slow requests answered before the run: 1,000, then an earlier load of 10 a second that
    ended 10 s before the run started."""
    return 1000 + 10 * min(max(ts - (start - 130), 0), 120)


def scrapes(start: int) -> range:
    return range(start - 300, start + RUN_S + 300, STEP)


def run(ts: int, start: int) -> int:
    """The run's requests answered by `ts`."""
    return RATE * min(max(ts - start, 0), RUN_S)


def one_pod_new_version(start: int) -> list[str]:
    """Pod a's version 3 answered earlier() requests, then the first half of the run's; version
    4 appears half-way and answers the second half."""
    lines = []
    half = start + RUN_S // 2
    for ts in scrapes(start):
        lines += sample("a", "3", ts, earlier(ts, start), run(min(ts, half), start))
        if ts >= half:  # the series is born with the rollout
            lines += sample("a", "4", ts, 0, run(ts, start) - run(half, start))
    return lines


def pod_replaced_before(start: int) -> list[str]:
    """Pod old answered earlier() requests and was replaced 10 s before the run (last scraped
    15 s before it); pod new's series is born with the run's first request."""
    lines = []
    for ts in scrapes(start):
        if ts <= start - STEP:
            lines += sample("old", "3", ts, earlier(ts, start), 0)
        if ts > start:
            lines += sample("new", "3", ts, 0, run(ts, start))
    return lines


def container_restarted(start: int) -> list[str]:
    """Pod r answered earlier() requests; its container restarted as the run began, so its
    counters start again from the run's first request."""
    return [
        line
        for ts in scrapes(start)
        for line in (
            sample("r", "3", ts, earlier(ts, start), 0)
            if ts <= start
            else sample("r", "3", ts, 0, run(ts, start))
        )
    ]


def openmetrics(start: int) -> str:
    lines = [
        *container_restarted(start - RESTART_BEFORE_S),
        *pod_replaced_before(start - ROLLOUT_BEFORE_S),
        *one_pod_new_version(start),
    ]
    counters = [line for line in lines if line.startswith("forest_inference_requests_total")]
    histogram = [line for line in lines if line.startswith(NAME)]
    return "\n".join(
        [
            "# TYPE forest_inference_requests counter",
            *sorted(counters, key=lambda line: line.split("} ")[0]),
            f"# TYPE {NAME} histogram",
            *sorted(histogram, key=lambda line: line.split("} ")[0]),
            "# EOF",
            "",
        ]
    )


@pytest.fixture(scope="module")
def run_start() -> int:
    return (int(time.time()) - 900) // STEP * STEP


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, run_start: int) -> Iterator[str]:
    with backfilled(
        tmp_path_factory.mktemp("prometheus"), openmetrics(run_start), "--query.lookback-delta=1m"
    ) as url:
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


@pytest.mark.parametrize(
    "before_s", [ROLLOUT_BEFORE_S, RESTART_BEFORE_S], ids=["pod-replaced", "container-restarted"]
)
def test_the_runs_requests_after_a_rollout_or_a_restart(prometheus, run_start, before_s):
    found = served.served(prometheus, record(run_start - before_s))
    # Not the run's count less the old counter's history (1,000 + 1,200 earlier).
    assert found["requests"] == RATE * RUN_S
    assert found["p99_ms"] == pytest.approx(10.0)


def test_comparison_sets_locust_beside_the_service(prometheus, run_start):
    run = record(run_start, p99_ms=11, achieved_rate_per_s=19.0)
    seen = served.comparison(run, served.served(prometheus, run))
    assert seen["locust"]["p99_ms"] == 11 and seen["prometheus"]["p99_ms"] == pytest.approx(10)
    assert seen["p99_relative_error"] == pytest.approx(1 / 11, abs=1e-3)
    assert seen["rate_relative_error"] == pytest.approx(1 / 19, abs=1e-3)


def test_a_window_without_requests_is_an_error(prometheus, run_start):
    with pytest.raises(LookupError, match="no /predict requests"):
        served.served(prometheus, record(run_start - 3600))
