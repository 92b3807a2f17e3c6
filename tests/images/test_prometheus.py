"""The chart's Prometheus pod, as rendered, from the offline stand-in image (Debian's 2.42), next
to the api-data and inference pods under their Service names: it scrapes both through the names
its configuration gives (inference through its headless Service's DNS) and loads every rule
group of files/prometheus/rules, as its own HTTP API reports."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.images.conftest import start
from tests.images.pods import Pod
from tests.support.helm import CHART_DIR

RULE_FILES = sorted((CHART_DIR / "files" / "prometheus" / "rules").glob("*.yaml"))


def api(pod: Pod, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{pod.ip}:9090{path}", timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    assert body["status"] == "success", body
    return body


def wait_for_targets(pod: Pod, jobs: set[str], timeout: float = 180) -> list[dict[str, Any]]:
    """The active targets once every job in `jobs` has one that is up (a scrape every 15 s)."""
    deadline = time.monotonic() + timeout
    active: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        active = api(pod, "/api/v1/targets")["data"]["activeTargets"]
        up = {t["labels"]["job"] for t in active if t["health"] == "up"}
        if jobs <= up:
            return active
        time.sleep(3)
    raise AssertionError(f"targets not up within {timeout} s: {active}\n{pod.logs()}")


def test_prometheus_scrapes_the_services_and_loads_the_rules(
    docs: list[dict[str, Any]], network: str, workdir: Path, api_data: Pod, inference: Pod
) -> None:
    prometheus = start(docs, network, workdir, "Deployment", "fm-prometheus")
    try:
        prometheus.wait_ready(timeout=120, kind="startupProbe")
        prometheus.wait_ready(timeout=60)
        assert prometheus.probe("livenessProbe")

        active = wait_for_targets(prometheus, {"prometheus", "inference", "api-data"})
        by_job = {t["labels"]["job"]: t for t in active}
        assert by_job["api-data"]["scrapeUrl"] == "http://fm-api-data:8000/metrics"
        # Discovered by DNS: the inference pod's own address, not a Service's.
        assert by_job["inference"]["scrapeUrl"] == f"http://{inference.ip}:8001/metrics"

        # The series the rules read arrive under the names the services export.
        for metric in ("forest_inference_ready", "api_data_batches"):
            result = api(prometheus, f"/api/v1/query?query={metric}")["data"]["result"]
            assert result, metric

        expected = {
            group["name"]
            for path in RULE_FILES
            for group in yaml.safe_load(path.read_text())["groups"]
        }
        groups = api(prometheus, "/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in groups} == expected
        # Every rule evaluates without error (an objective is a constant: a value right away).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            groups = api(prometheus, "/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if all(r.get("lastEvaluation", "").startswith("20") for r in rules):
                break
            time.sleep(3)
        assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
        query = "objective:forest_inference_request_duration_seconds:p99"
        objective = api(prometheus, f"/api/v1/query?query={query}")["data"]["result"]
        assert float(objective[0]["value"][1]) == 0.015
    finally:
        prometheus.remove()
