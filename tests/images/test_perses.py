"""The Perses stand-in (forest-mlops-standin/perses, scripts/build-perses.sh's build) run as the
chart renders its pod: uid 65534, read-only root, the config and provisioning ConfigMaps, the
emptyDirs, next to the chart's Prometheus pod reached by its Service name. It unpacks its plugin
archives, resolves their CUE schemas from the baked-in cache, provisions the dashboards, and its
datasource proxy answers from the Prometheus pod (which scrapes itself).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from forest_mlops.monitoring import dashboards, perses
from tests.images.conftest import PERSES_IMAGE, need_images, start
from tests.images.pods import Pod, docker

PROJECT = "fm"


def test_the_stand_in_serves_the_charts_dashboards_from_the_charts_prometheus(
    docs: list[dict[str, Any]], network: str, workdir: Path
) -> None:
    prometheus: Pod | None = None
    pod = None
    try:
        prometheus = start(docs, network, workdir, "Deployment", "fm-prometheus")
        prometheus.wait_ready(timeout=120, kind="startupProbe")
        pod = start(docs, network, workdir, "Deployment", "fm-perses")
        pod.wait_ready(timeout=180, kind="startupProbe")
        base = f"http://{pod.ip}:8080"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = httpx.get(f"{base}/api/v1/projects/{PROJECT}/dashboards", timeout=10)
            if listed.status_code == 200 and len(listed.json()) == len(
                dashboards.load_dashboards()
            ):
                break
            time.sleep(2)
        modules = httpx.get(f"{base}/api/v1/plugins", timeout=10).json()
        assert perses.loaded_plugins(modules) >= perses.REQUIRED_PLUGINS, pod.logs()
        # Through the Service name the chart writes into the Datasource: Prometheus' own job.
        deadline = time.monotonic() + 60
        series: list[Any] = []
        while time.monotonic() < deadline and not series:
            answer = httpx.get(
                f"{perses.proxy_url(base, PROJECT)}/api/v1/query",
                params={"query": 'up{job="prometheus"}'},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            series = answer.json()["data"]["result"]
            time.sleep(2)
        assert series, pod.logs()
        # Every dashboard and panel is there; only series this pair does not have are empty.
        problems = perses.check_perses(base, PROJECT)
        assert [p for p in problems if not p.startswith("no data: ")] == [], problems
    finally:
        if pod is not None:
            pod.remove()
        if prometheus is not None:
            prometheus.remove()


def test_the_stand_in_image_runs_as_nobody_with_the_cue_cache() -> None:
    image = ":".join(PERSES_IMAGE)
    need_images(image)
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["Entrypoint"] == ["/bin/perses"]
    assert config["User"] == "65534:65534"
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["CUE_CACHE_DIR"] == "/usr/share/perses/cue-cache"
    assert env["CUE_REGISTRY"] == "localhost:1+insecure"
