"""The fetch step over real HTTP: retries with backoff, clear failures, the end of the data."""

from __future__ import annotations

import pytest

from forest_mlops.ingestion.fetch import (
    CollectionComplete,
    Fetched,
    FetchError,
    RetryPolicy,
    fetch_window,
    make_client,
)
from tests.ingestion.servers import Reply, ScriptedApi, complete_reply, data_reply

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, timeout=0.5)
ROW = ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "4"]


def fetch(api: ScriptedApi, requests: int = 1, policy: RetryPolicy = FAST) -> object:
    with make_client(api.url, policy) as client:
        return fetch_window(client, 1, requests, policy)


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


def test_unreachable_api_is_a_clear_error() -> None:
    with ScriptedApi([]).running() as api:
        url = api.url
    policy = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01, timeout=0.5)
    with make_client(url, policy) as client, pytest.raises(FetchError, match="ConnectError"):
        fetch_window(client, 1, 1, policy)


def test_all_data_collected_is_a_result_not_an_error() -> None:
    with ScriptedApi([complete_reply(1)]).running() as api:
        outcome = fetch(api)
    assert isinstance(outcome, CollectionComplete)
    assert "collected" in outcome.message
    assert len(api.requests) == 1


def test_other_client_errors_are_not_retried() -> None:
    reply = Reply(400, b'{"detail": "Invalid group_number 1: groups are 1..0"}')
    api = ScriptedApi([reply])
    with api.running(), pytest.raises(FetchError, match=r"answered 400: .*Invalid group_number"):
        fetch(api)
    assert len(api.requests) == 1


def test_a_window_makes_k_requests_and_keeps_them_when_the_data_ends() -> None:
    script = [data_reply(1, 9, [ROW]), data_reply(1, 9, [ROW]), complete_reply(1)]
    with ScriptedApi(script).running() as api:
        outcome = fetch(api, requests=5)
    assert isinstance(outcome, Fetched)
    assert len(outcome.responses) == 2
    assert outcome.complete and "collected" in (outcome.complete_message or "")
    assert len(api.requests) == 3
