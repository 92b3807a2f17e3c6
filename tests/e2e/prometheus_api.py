"""Reads the cluster's Prometheus through its HTTP API, for the e2e's observability checks.

Only the three answers the checks need (targets, instant queries, alerts), each failing with
Prometheus' own error text rather than a KeyError.
"""

from __future__ import annotations

from typing import Any

import httpx
import yaml


def _data(answer: httpx.Response) -> Any:
    body = answer.json()
    if answer.status_code != 200 or body.get("status") != "success":
        raise AssertionError(f"Prometheus answered {answer.status_code}: {answer.text[:500]}")
    return body["data"]


def active_targets(url: str) -> list[dict[str, Any]]:
    """Every active target: its job (scrapePool), instance, health and last error."""
    data = _data(httpx.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=30))
    return [
        {
            "job": target["scrapePool"],
            "instance": target["labels"].get("instance", ""),
            "health": target["health"],
            "error": target.get("lastError", ""),
        }
        for target in data["activeTargets"]
    ]


def scrape_jobs(prometheus_yml: str) -> set[str]:
    """The job names of a prometheus.yml (as the release's ConfigMap holds it)."""
    return {job["job_name"] for job in yaml.safe_load(prometheus_yml)["scrape_configs"]}


def query(url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """An instant query's vector: [{"metric": {...}, "value": [time, "text"]}, ...]."""
    params: dict[str, Any] = {"query": expr}
    if at is not None:
        params["time"] = at
    data = _data(httpx.get(f"{url}/api/v1/query", params=params, timeout=30))
    if data["resultType"] != "vector":
        raise AssertionError(f"{expr}: a {data['resultType']}, not a vector")
    vector: list[dict[str, Any]] = data["result"]
    return vector


def scalar(url: str, expr: str, at: float | None = None) -> float | None:
    """The single value of a one-series query; None when it returns nothing."""
    result = query(url, expr, at)
    if not result:
        return None
    if len(result) > 1:
        raise AssertionError(f"{expr}: {len(result)} series, expected one: {result}")
    return float(result[0]["value"][1])


def alert_states(url: str, name: str) -> list[str]:
    """States ("pending", "firing") of the active alerts called `name`; [] when none is active."""
    data = _data(httpx.get(f"{url}/api/v1/alerts", timeout=30))
    return [alert["state"] for alert in data["alerts"] if alert["labels"]["alertname"] == name]
