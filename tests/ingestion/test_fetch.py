"""The fetch step over real HTTP: retries with backoff, clear failures, the end of the data.

Faults the real data API can produce (the end of the data, a bad group, a stopped server) are
made with the real `forest-mlops api-data` process; the scripted server (tests/ingestion/
servers.py) serves only what the real API never would (5xx, timeouts, cut or malformed bodies).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forest_mlops import synthetic
from forest_mlops.ingestion.fetch import (
    CollectionComplete,
    Fetched,
    FetchError,
    RetryPolicy,
    WindowRule,
    fetch_window,
    make_client,
)
from tests.ingestion.servers import (
    DataApi,
    Reply,
    ScriptedApi,
    complete_reply,
    data_reply,
    start_data_api,
)

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, timeout=0.5)
ROW = ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "4"]


WINDOW = 0.5  # the real API's batch window: short, so the data ends quickly


def fetch(
    api: ScriptedApi | DataApi, requests: int = 1, policy: RetryPolicy = FAST, group: int = 1
) -> object:
    with make_client(api.url, policy) as client:
        return fetch_window(client, group, WindowRule.fixed(requests), policy)


@pytest.fixture(scope="module")
def one_batch_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataApi]:
    """The real data API on a dataset of one batch: a group's second window is its end."""
    workdir = tmp_path_factory.mktemp("fetch-real-api")
    dataset = synthetic.write_csv(workdir / "fetch_synthetic.csv", n_rows=200, seed=11)
    api = start_data_api(dataset, [], workdir, min_update_time=WINDOW, batches=1)
    yield api
    api.process.stop()


def bad_requests(api: DataApi) -> float:
    """How many GET /data the API has answered 400, from its /metrics."""
    text = httpx.get(f"{api.url}/metrics", timeout=10).text
    line = 'api_data_requests_total{endpoint="/data",status="400"} '
    values = [float(row.removeprefix(line)) for row in text.splitlines() if row.startswith(line)]
    return values[0] if values else 0.0


def start_stopped_api(workdir: Path) -> str:
    """The URL of a real data API that has been stopped: nothing listens there any more."""
    dataset = synthetic.write_csv(workdir / "stopped_synthetic.csv", n_rows=200, seed=12)
    api = start_data_api(dataset, [], workdir, min_update_time=WINDOW, batches=1)
    api.process.stop()
    return api.url


def test_server_errors_are_retried_until_an_answer() -> None:
    script = [Reply(503), Reply(500, b"oops"), data_reply(1, 0, [ROW])]
    with ScriptedApi(script).running() as api:
        outcome = fetch(api)
    assert isinstance(outcome, Fetched)
    assert [r.rows for r in outcome.responses] == [[ROW]]
    assert len(api.requests) == 3
    assert api.requests[0] == "/data?group_number=1"


def test_timeouts_truncated_and_invalid_bodies_are_retried() -> None:
    good = data_reply(1, 3, [ROW, ROW])
    script = [
        Reply(delay=1.5, body=good.body),  # longer than the 0.5 s timeout
        Reply(body=good.body, truncate=True),  # connection closed mid-body
        Reply(body=good.body[: len(good.body) // 2]),  # complete transfer, cut JSON
        Reply(body=b'{"unexpected": true}'),  # valid JSON, not the API's shape
        good,
    ]
    policy = RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.05, timeout=0.5)
    with ScriptedApi(script).running() as api:
        outcome = fetch(api, policy=policy)
    assert isinstance(outcome, Fetched)
    assert outcome.responses[0].batch_number == 3
    assert outcome.rows_received == 2
    assert len(api.requests) == 5


def test_persistent_failure_is_a_clear_error_after_the_tries() -> None:
    api = ScriptedApi([], default=Reply(502, b"bad gateway"))
    expected = r"failed after 4 tries: _Retryable: HTTP 502"
    with api.running(), pytest.raises(FetchError, match=expected):
        fetch(api)
    assert len(api.requests) == 4


def test_unreachable_api_is_a_clear_error(tmp_path: Path) -> None:
    url = start_stopped_api(tmp_path)
    policy = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01, timeout=0.5)
    with make_client(url, policy) as client, pytest.raises(FetchError, match="ConnectError"):
        fetch_window(client, 1, WindowRule.fixed(1), policy)


def test_all_data_collected_is_a_result_not_an_error(one_batch_api: DataApi) -> None:
    first = fetch(one_batch_api, group=1)
    assert isinstance(first, Fetched) and first.responses[0].batch_number == 0
    time.sleep(WINDOW + 0.1)  # the only batch's window has passed: the data has ended
    outcome = fetch(one_batch_api, group=1)
    assert isinstance(outcome, CollectionComplete)
    assert "collected" in outcome.message


def test_other_client_errors_are_not_retried(one_batch_api: DataApi) -> None:
    # A group the API does not have: a 400 that is not the end of the data. One try only, as
    # the API's own request counter shows.
    before = bad_requests(one_batch_api)
    with pytest.raises(FetchError, match=r"answered 400: .*Invalid group_number 99"):
        fetch(one_batch_api, group=99)
    assert bad_requests(one_batch_api) == before + 1


def test_a_window_makes_k_requests_and_keeps_them_when_the_data_ends() -> None:
    script = [data_reply(1, 9, [ROW]), data_reply(1, 9, [ROW]), complete_reply(1)]
    with ScriptedApi(script).running() as api:
        outcome = fetch(api, requests=5)
    assert isinstance(outcome, Fetched)
    assert len(outcome.responses) == 2
    assert outcome.complete and "collected" in (outcome.complete_message or "")
    assert len(api.requests) == 3
