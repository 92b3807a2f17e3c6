"""The load test's Locust part against a real HTTP server: the rate it holds, the summary it
prints and how bench/results/load-cluster.json's record is made of it; the records it sends
are what the inference service's own parser accepts."""

from __future__ import annotations

import itertools
import time

import orjson
import pytest

from forest_mlops.load import records, summary
from inference_api import records as inference_records
from tests.load.conftest import run_locust


def test_the_generated_records_are_valid_inference_requests():
    generated = records.generated_records()
    assert len(generated) == records.GENERATED
    assert generated == records.generated_records(), "seeded: the same records every run"
    for record in generated:
        inference_records.parse_json_body(orjson.dumps(record), max_batch=1)


def test_records_from_a_file_drop_the_label(real_records):
    found = records.records_from(real_records)
    assert len(found) == 500
    assert all("Cover_Type" not in r for r in found)
    inference_records.parse_json_body(orjson.dumps(found), max_batch=500)


@pytest.mark.slow
def test_locust_holds_the_rate_with_real_rows_and_reports_it(predict_server, real_records):
    url = predict_server()
    rate, duration = 10.0, 12
    before = time.time()
    done = run_locust(
        url, rate=rate, duration_s=duration, env={records.RECORDS_ENV: str(real_records)}
    )
    after = time.time()
    found = summary.parse_log(done.stdout + done.stderr)
    result = summary.result(found, duration_s=duration)
    assert result["failures"] == 0, result["errors"]
    assert result["users"] == 10 and result["target_rate_per_s"] == rate
    assert before < result["started_at"] < result["ended_at"] <= after
    # Locust ends a little early (its timer counts from before the users start), so the
    # window is measured, not taken from --run-time.
    assert 0.6 * duration <= result["measured_s"] <= duration + 1
    assert result["achieved_rate_per_s"] == pytest.approx(rate, rel=0.15)
    assert result["requests"] == pytest.approx(rate * result["measured_s"], rel=0.15)
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"] <= result["max_ms"] + 1


@pytest.mark.slow
def test_the_requests_arrive_one_every_period_not_in_bursts(predict_server, tmp_path):
    """Locust starts every user at once; without the locustfile's staggered start each user's
    request falls on the same instant every second, a burst of `rate` requests."""
    arrivals = tmp_path / "arrivals"
    url = predict_server(arrivals=arrivals)
    rate = 10.0
    run_locust(url, rate=rate, duration_s=8)
    times = sorted(float(t) for t in arrivals.read_text().split())
    assert len(times) >= 4 * rate
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(times))
    # One every 100 ms, give or take the scheduling of a busy machine; a burst's are ~1 ms apart.
    assert 0.5 / rate <= gaps[len(gaps) // 2] <= 1.5 / rate, gaps
    busiest = max(sum(1 for u in times if t <= u < t + 0.2 / rate) for t in times)
    assert busiest <= 3, f"{busiest} requests within {200 / rate:g} ms"


def test_requests_in_flight_at_the_end_are_answered_and_counted(predict_server, tmp_path):
    """Locust's run time ends with requests in flight: at 10/s and 400 ms an answer, about
    four. Killed there (Locust's default), the service answered and counted them and Locust did
    not: make e2e's Prometheus count was up to 3 above Locust's once answers took 100 ms. The
    Job's --stop-timeout lets every sent request finish into Locust's figures."""
    arrivals = tmp_path / "arrivals"
    url = predict_server(arrivals=arrivals, delay_s=0.4)
    done = run_locust(url, rate=10.0, duration_s=4)
    result = summary.result(summary.parse_log(done.stdout))
    sent = len(arrivals.read_text().split())
    assert sent >= 20
    assert result["requests"] == sent and result["failures"] == 0, (result, sent)


@pytest.mark.slow
def test_failed_requests_are_counted_not_fatal(predict_server):
    """A service that answers 503 (inference without a model): Locust exits 0 (the Job
    succeeds) and every request is a failure of the record, with its reason."""
    url = predict_server(status=503)
    done = run_locust(url, rate=4.0, duration_s=5)
    result = summary.result(summary.parse_log(done.stdout))
    assert result["requests"] > 0
    assert result["failures"] == result["requests"]
    (error,) = result["errors"]
    assert "503" in error["error"] and error["occurrences"] == result["failures"]


class TestSummary:
    LINE = summary.summary_line(
        {
            "target_rate_per_s": 20.0, "users": 20, "requests": 1200, "failures": 3,
            "p50_ms": 12, "p95_ms": 30, "p99_ms": 45, "max_ms": 80.5,
            "started_at": 1000.0, "ended_at": 1060.0, "errors": [],
        }
    )  # fmt: skip

    def test_the_line_is_found_among_locusts_log(self):
        log = f"[2026-12-05 16:00:00,000] pod/INFO/locust.main: Starting\n{self.LINE}\nType ...\n"
        result = summary.result(summary.parse_log(log), image="x")
        assert result["achieved_rate_per_s"] == 20.0
        assert result["measured_s"] == 60.0
        assert result["failures"] == 3 and result["image"] == "x"

    def test_no_line_names_the_end_of_the_log(self):
        with pytest.raises(summary.LoadSummaryError, match="Traceback"):
            summary.parse_log("Starting\nTraceback (most recent call last):\n")

    def test_a_truncated_line_is_refused(self):
        with pytest.raises(summary.LoadSummaryError, match="malformed"):
            summary.parse_log(self.LINE[:-10])

    def test_a_line_without_a_key_is_refused(self):
        with pytest.raises(summary.LoadSummaryError, match="p99_ms"):
            summary.parse_log(self.LINE.replace('"p99_ms"', '"p98_ms"'))

    def test_no_request_gives_rate_zero(self):
        line = self.LINE.replace('"requests": 1200', '"requests": 0').replace(
            '"ended_at": 1060.0', '"ended_at": null'
        )
        assert summary.result(summary.parse_log(line))["achieved_rate_per_s"] == 0.0

    @pytest.mark.parametrize(("rate", "users"), [(0.5, 1), (1, 1), (20, 20), (20.5, 21)])
    def test_one_user_per_request_a_second(self, rate, users):
        assert summary.users_for(rate) == users

    def test_a_rate_must_be_positive(self):
        with pytest.raises(ValueError, match="positive"):
            summary.users_for(0)
