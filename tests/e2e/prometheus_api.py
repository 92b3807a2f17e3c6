"""Reads the cluster's Prometheus through its HTTP API, for the e2e's observability checks.

Only the three answers the checks need (targets, instant queries, alerts), each failing with
Prometheus' own error text rather than a KeyError; instant queries are
forest_mlops.monitoring.prometheus_query's.
"""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from forest_mlops.monitoring import prometheus_query


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


# Instant queries are the product's own client (make load compares with Prometheus too).
query = prometheus_query.query
scalar = prometheus_query.scalar


def alert_states(url: str, name: str) -> list[str]:
    """States ("pending", "firing") of the active alerts called `name`; [] when none is active."""
    data = _data(httpx.get(f"{url}/api/v1/alerts", timeout=30))
    return [alert["state"] for alert in data["alerts"] if alert["labels"]["alertname"] == name]
