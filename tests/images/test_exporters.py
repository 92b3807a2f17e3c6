"""Prometheus' two exporters as the chart renders them, from their offline stand-in images.

The StatsD exporter pod runs with its rendered mapping ConfigMap and flags. Airflow's own metrics
code sends to it from a task pod of the rendered pod template (the project's Airflow image, the
rendered airflow.cfg, initialised as the task runner does it): so the `[metrics]` settings the
chart writes reach the exporter under the Service name it gives. The rendered Prometheus pod
then scrapes the exporter (job airflow-statsd) and answers the series the alert rules read.

kube-state-metrics needs an API server to do anything: here only its stand-in binary starts and
reports its release (`version`, a subcommand: it has no --version flag); the e2e checks its
target on the cluster.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.images.conftest import KUBE_STATE_METRICS_IMAGE, need_images, start
from tests.images.pods import Pod, docker, run_once
from tests.images.test_prometheus import api, wait_for_targets
from tests.support.netpol import task_pod_template

TRAINING, EXTRACTION = "forest_cover_model_training", "forest_cover_data_extraction"

# What a task pod's process does with the rendered airflow.cfg: the task runner's own
# initialisation (airflow.sdk.execution_time.task_runner.main), then the calls the task runner and
# DagRun make, with the tags they pass. Prints the backend, so a silently disabled StatsD
# (NoStatsLogger) fails the test here rather than as missing series later.
AIRFLOW_SENDS = f"""
import datetime
from airflow.sdk._shared.observability.metrics import stats
from airflow.sdk.configuration import conf
from airflow.sdk.observability.metrics import stats_utils

stats.initialize(
    factory=stats_utils.get_stats_factory(),
    export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
)
fetch = {{"dag_id": "{EXTRACTION}", "task_id": "fetch"}}
stats.incr("ti.start", tags=fetch)
stats.incr("ti.finish", tags={{**fetch, "state": "failed"}})
stats.timing(
    "dagrun.duration.failed",
    dt=datetime.timedelta(seconds=412),
    tags={{"dag_id": "{TRAINING}", "run_type": "scheduled"}},
)
print(type(stats._get_backend()).__name__, conf.get("metrics", "statsd_host"))
"""


def query(prometheus: Pod, expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api(
        prometheus, "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    )["data"]["result"]
    return result


def wait_for_series(prometheus: Pod, expr: str, timeout: float = 90) -> list[dict[str, Any]]:
    """The query's result once it has one (the exporter is scraped every 15 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = query(prometheus, expr)
        if result:
            return result
        time.sleep(3)
    raise AssertionError(f"no series for {expr} within {timeout} s")


def test_airflow_statsd_reaches_prometheus_through_the_exporter(
    docs: list[dict[str, Any]], network: str, workdir: Path
) -> None:
    exporter = start(docs, network, workdir, "Deployment", "fm-statsd-exporter")
    prometheus: Pod | None = None
    try:
        exporter.wait_ready(timeout=60)
        assert exporter.probe("livenessProbe")

        task = Pod(docs, task_pod_template(docs), network, "fm-task", workdir / "fm-task")
        need_images(task.container()["image"])
        out = run_once(task, ["python", "-c", AIRFLOW_SENDS], timeout=300)
        assert out.split()[-2:] == ["SafeStatsdLogger", "fm-statsd-exporter"], out

        # The exporter's own page, as Prometheus will read it (UDP: give it a moment).
        with urllib.request.urlopen(f"http://{exporter.ip}:9102/metrics", timeout=10) as r:
            page = r.read().decode()
        assert (
            f'airflow_ti_finish_total{{dag_id="{EXTRACTION}",state="failed",task_id="fetch"}} 1'
            in page
        ), exporter.logs()

        prometheus = start(docs, network, workdir, "Deployment", "fm-prometheus")
        prometheus.wait_ready(timeout=120, kind="startupProbe")
        active = wait_for_targets(prometheus, {"prometheus", "airflow-statsd"})
        (target,) = [t for t in active if t["labels"]["job"] == "airflow-statsd"]
        assert target["scrapeUrl"] == "http://fm-statsd-exporter:9102/metrics"

        (finish,) = wait_for_series(
            prometheus, f'airflow_ti_finish_total{{dag_id="{EXTRACTION}",state="failed"}}'
        )
        assert finish["metric"]["task_id"] == "fetch" and float(finish["value"][1]) == 1
        (total,) = query(prometheus, f'airflow_dagrun_duration_seconds_sum{{dag_id="{TRAINING}"}}')
        assert total["metric"]["state"] == "failed" and float(total["value"][1]) == 412
        # The bare duplicate Airflow also sends is dropped by the mapping, not double-counted.
        assert not query(prometheus, "airflow_ti_finish")
    finally:
        if prometheus is not None:
            prometheus.remove()
        exporter.remove()


def test_kube_state_metrics_stand_in_starts_and_reports_its_release() -> None:
    image = ":".join(KUBE_STATE_METRICS_IMAGE)
    need_images(image)
    proc = docker("run", "--rm", "--user", "65534:65534", "--read-only", image, "version",
                  check=False, timeout=60)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "kube-state-metrics, version v2.20.0 " in out, out
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["Entrypoint"] == ["/kube-state-metrics"]
    assert config["User"] == "65534:65534"
