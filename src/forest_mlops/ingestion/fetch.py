"""Fetch one batch window from the data API: k GET /data calls with retries and backoff.

Transient trouble (timeouts, connection errors, 5xx, a truncated or malformed JSON body) is
retried with exponential backoff by tenacity; when the tries run out, FetchError says what
failed. The API's 400 "all data collected" is not an error: it is the CollectionComplete result.
Any other 4xx (a bad group number) is a configuration error and is not retried.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import tenacity

from forest_mlops.database import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 30.0
    timeout: float = 30.0


@dataclass(frozen=True)
class Response:
    """One /data response: the batch it came from and its rows exactly as received."""

    batch_number: int
    rows: list[Any]
    # The API's X-Data-Synthetic header: its dataset is generated, not the real one.
    synthetic: bool = False


@dataclass(frozen=True)
class Fetched:
    """What one window's requests returned (at least one response)."""

    group_number: int
    responses: list[Response]
    started_at: dt.datetime
    # The API answered "all data collected" after these responses (a later request in the
    # same window found the last batch's window over).
    complete: bool = False
    complete_message: str | None = None

    @property
    def rows_received(self) -> int:
        return sum(len(r.rows) for r in self.responses)


@dataclass(frozen=True)
class CollectionComplete:
    """The API has handed out every batch of the group (its 400 "all data collected")."""

    group_number: int
    message: str
    started_at: dt.datetime = field(default_factory=utcnow)


class FetchError(RuntimeError):
    """The API could not be read: unreachable, failing or answering nonsense after the retries."""


class _Retryable(Exception):
    """A response worth trying again (5xx, invalid body)."""


def _is_collection_complete(response: httpx.Response) -> bool:
    # The API's message for the end of the data; a 400 for a bad group number says otherwise.
    return response.status_code == 400 and "collected" in response.text.lower()


def _parse_body(response: httpx.Response, group_number: int) -> Response:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise _Retryable(
            f"invalid JSON from the API ({len(response.content)} bytes): {exc}"
        ) from exc
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise _Retryable(f"unexpected body from the API: {str(body)[:200]}")
    batch = body.get("batch_number")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 0:
        raise _Retryable(f"unexpected batch_number from the API: {batch!r}")
    if body.get("group_number") != group_number:
        raise _Retryable(f"asked for group {group_number}, got {body.get('group_number')!r}")
    synthetic = response.headers.get("X-Data-Synthetic", "false").lower() == "true"
    return Response(batch_number=batch, rows=body["data"], synthetic=synthetic)


def fetch_once(
    client: httpx.Client, group_number: int, policy: RetryPolicy
) -> Response | CollectionComplete:
    """GET /data for the group, retrying transient failures; raises FetchError when they persist."""

    def attempt() -> Response | CollectionComplete:
        response = client.get("/data", params={"group_number": group_number})
        if _is_collection_complete(response):
            return CollectionComplete(group_number, _message(response))
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise FetchError(
                f"GET {response.url} answered {response.status_code}: {response.text[:300]}"
            )
        return _parse_body(response, group_number)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((httpx.TransportError, _Retryable)),
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=tenacity.wait_exponential(
            multiplier=policy.initial_wait, min=policy.initial_wait, max=policy.max_wait
        ),
        before_sleep=lambda state: log.warning(
            "GET /data?group_number=%s failed (try %s of %s): %s; retrying",
            group_number,
            state.attempt_number,
            policy.attempts,
            state.outcome.exception() if state.outcome else None,
        ),
        reraise=False,
    )
    try:
        return retrying(attempt)
    except tenacity.RetryError as exc:
        last = exc.last_attempt.exception()
        raise FetchError(
            f"GET {client.base_url}/data?group_number={group_number} failed after "
            f"{policy.attempts} tries: {type(last).__name__}: {last}"
        ) from last


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:500]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:500]


def make_client(api_url: str, policy: RetryPolicy, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=api_url.rstrip("/"), timeout=policy.timeout, **kwargs)


def fetch_window(
    client: httpx.Client, group_number: int, requests: int, policy: RetryPolicy
) -> Fetched | CollectionComplete:
    """`requests` GET /data calls for one batch window (more calls collect more of the batch).

    Returns CollectionComplete when the first call finds the collection over; a window whose
    later call finds it over keeps the responses it got (Fetched.complete is then set).
    """
    started_at = utcnow()
    responses: list[Response] = []
    for _ in range(requests):
        outcome = fetch_once(client, group_number, policy)
        if isinstance(outcome, CollectionComplete):
            if not responses:
                return CollectionComplete(group_number, outcome.message, started_at)
            return Fetched(group_number, responses, started_at, True, outcome.message)
        responses.append(outcome)
    log.info(
        "group %s: %s response(s), %s rows, batch(es) %s",
        group_number,
        len(responses),
        sum(len(r.rows) for r in responses),
        sorted({r.batch_number for r in responses}),
    )
    return Fetched(group_number, responses, started_at)
