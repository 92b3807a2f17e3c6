"""When the data API will serve a group its next batch, as the API itself announces it.

The API moves a group to its next batch MIN_UPDATE_TIME after the last change and publishes
the moment (`GET /batches`: `groups[].next_change_at`, seconds since the epoch on the API's
clock). Waiting exactly until then collects each batch as soon as it exists, whatever window
the deployment uses, where a fixed 300 s interval is late by up to a window (or, with a
shorter one configured, asks too early and loads the same batch twice).

The wait is computed on the API's clock, not ours: the HTTP `Date` header of the same answer
says what time the API thinks it is, to the second, rounded down. `next_change_at - Date` is
therefore never shorter than the real wait (at most 1 s longer), whatever the skew between
the two machines' clocks.
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime

import httpx

log = logging.getLogger(__name__)


def seconds_until_next_batch(client: httpx.Client, group_number: int) -> float | None:
    """Seconds to wait before the group's next batch is served; None if the API does not say.

    0 when the API announces no change (the group has not started, or all data is collected:
    the next request shows which). None when /batches is missing or unreadable (an API
    without it, a network error): the caller then falls back to a fixed interval.
    """
    try:
        response = client.get("/batches")
        response.raise_for_status()
        groups = response.json()["groups"]
        (group,) = [g for g in groups if int(g["group_number"]) == group_number]
        due = group["next_change_at"]
        api_now = parsedate_to_datetime(response.headers["date"]).timestamp()
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        log.warning("the data API announces no schedule (%s: %s)", type(exc).__name__, exc)
        return None
    if due is None:
        return 0.0
    return max(0.0, float(due) - api_now)
