"""Instant queries against Prometheus' HTTP API (/api/v1/query), for the code that compares
its own measurements with Prometheus' (make load, make e2e).

Each failure says what Prometheus answered rather than surfacing as a KeyError.
"""

from __future__ import annotations

from typing import Any

import httpx


class PrometheusQueryError(RuntimeError):
    """Prometheus refused the query, or answered something else than a vector."""


def query(url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """An instant query's vector: [{"metric": {...}, "value": [time, "text"]}, ...]."""
    params: dict[str, Any] = {"query": expr}
    if at is not None:
        params["time"] = at
    answer = httpx.get(f"{url}/api/v1/query", params=params, timeout=30)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or body.get("status") != "success":
        raise PrometheusQueryError(f"Prometheus answered {answer.status_code}: {answer.text[:500]}")
    data = body["data"]
    if data["resultType"] != "vector":
        raise PrometheusQueryError(f"{expr}: a {data['resultType']}, not a vector")
    vector: list[dict[str, Any]] = data["result"]
    return vector


def scalar(url: str, expr: str, at: float | None = None) -> float | None:
    """The single value of a one-series query; None when it returns nothing."""
    result = query(url, expr, at)
    if not result:
        return None
    if len(result) > 1:
        raise PrometheusQueryError(f"{expr}: {len(result)} series, expected one: {result}")
    return float(result[0]["value"][1])
