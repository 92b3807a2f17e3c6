"""run_load_job and `python -m bench.load_cluster` against the Kubernetes API stand-in
(tests/platform/kube_standin.py: create, status, pods, log, delete; it runs nothing), with the
log a real Locust run printed (tests/load/test_locust.py makes one)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import config

from forest_mlops.load import job, summary
from tests.load.conftest import REPO_ROOT, run_locust
from tests.platform.kube_standin import KubeStandIn
from tests.support.processes import VENV_BIN

IMAGE = "localhost:5001/forest-mlops/load:51ca3686f873"


@pytest.fixture(scope="module")
def locust_log(predict_server) -> Iterator[list[str]]:
    """A real Locust run's output, as the Job's log would carry it (stdout and stderr)."""
    done = run_locust(predict_server(), rate=4.0, duration_s=5)
    yield [f"{line}\n" for line in (done.stderr + done.stdout).splitlines()]


def test_the_job_is_created_followed_read_and_deleted(locust_log):
    with KubeStandIn([], log_lines=locust_log) as standin:
        api = config.new_client_from_config_dict(standin.kubeconfig())
        record = job.run_load_job(
            api, namespace="forest-mlops", release="forest-mlops", image=IMAGE, rate=4,
            duration_s=5,
        )  # fmt: skip
    (created,) = standin.created_jobs
    name = created["metadata"]["name"]
    expected = job.load_job(
        name=name, namespace="forest-mlops", release="forest-mlops", image=IMAGE, rate=4,
        duration_s=5,
    )  # fmt: skip
    assert {k: v for k, v in created.items() if k != "metadata"} == {
        k: v for k, v in expected.items() if k != "metadata"
    }
    assert standin.deleted_jobs == [(name, {"propagationPolicy": "Background"})]
    assert record["job"] == name and record["job_outcome"] == "Complete"
    assert record["image"] == IMAGE and record["duration_s"] == 5
    assert record["requests"] > 0 and record["failures"] == 0
    assert record["started_at"] < record["ended_at"]


def test_a_log_without_summary_is_an_error_and_the_job_is_still_deleted():
    log = ["Traceback (most recent call last):\n", "ModuleNotFoundError: No module named 'x'\n"]
    with KubeStandIn([], log_lines=log, outcome="BackoffLimitExceeded") as standin:
        api = config.new_client_from_config_dict(standin.kubeconfig())
        with pytest.raises(
            job.LoadJobError, match=r"(?s)BackoffLimitExceeded.*ModuleNotFoundError"
        ):
            job.run_load_job(
                api, namespace="forest-mlops", release="forest-mlops", image=IMAGE, rate=1,
                duration_s=1,
            )  # fmt: skip
    assert len(standin.deleted_jobs) == 1


def run_cli(standin: KubeStandIn, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(standin.kubeconfig()))
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "bench.load_cluster", "--context", "standin",
         "--image", IMAGE, "--output", str(tmp_path / "load-cluster.json"), *args],
        cwd=REPO_ROOT,
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_make_loads_cli_writes_the_record(locust_log, tmp_path):
    with KubeStandIn([], log_lines=locust_log) as standin:
        done = run_cli(standin, tmp_path, "--rate", "4", "--duration", "5", "--no-prometheus")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "load-cluster.json").read_text())
    assert record["benchmark"] == "load_cluster" and record["context"] == "standin"
    assert record["vs_prometheus"] is None
    assert record["target_rate_per_s"] == 4.0 and record["failures"] == 0
    assert record["client_node"] == "control-plane" and record["client_cpu"] == "1"
    assert set(record) >= {
        "achieved_rate_per_s", "requests", "p50_ms", "p95_ms", "p99_ms", "started_at",
        "ended_at", "duration_s", "measured_on",
    }  # fmt: skip
    assert "written" in done.stdout


def test_the_cli_places_locust_where_asked(locust_log, tmp_path):
    with KubeStandIn([], log_lines=locust_log) as standin:
        done = run_cli(
            standin,
            tmp_path,
            "--duration",
            "5",
            "--no-prometheus",
            "--client-node",
            "control-plane",
        )
    assert done.returncode == 0, done.stderr
    (created,) = standin.created_jobs
    assert created["spec"]["template"]["spec"]["nodeSelector"] == {
        "node-role.kubernetes.io/control-plane": ""
    }
    record = json.loads((tmp_path / "load-cluster.json").read_text())
    assert record["client_node"] == "control-plane"


def test_an_unknown_client_node_is_a_usage_error(tmp_path):
    with KubeStandIn([]) as standin:
        done = run_cli(standin, tmp_path, "--client-node", "worker")
    assert done.returncode == 2 and "invalid choice: 'worker'" in done.stderr
    assert standin.created_jobs == [] and not (tmp_path / "load-cluster.json").exists()


def test_failed_requests_make_the_cli_fail_after_writing(tmp_path):
    line = summary.summary_line(
        {
            "target_rate_per_s": 2.0, "users": 2, "requests": 10, "failures": 10,
            "p50_ms": 3, "p95_ms": 4, "p99_ms": 5, "max_ms": 5.2, "started_at": 100.0,
            "ended_at": 105.0, "errors": [{"error": "POST /predict: HTTP 503", "occurrences": 10}],
        }
    )  # fmt: skip
    with KubeStandIn([], log_lines=[line + "\n"]) as standin:
        done = run_cli(standin, tmp_path, "--rate", "2", "--duration", "5")
    assert done.returncode == 1
    assert "10 requests failed" in done.stderr
    # The stand-in API cannot port-forward to a Prometheus: Locust's figures are kept.
    assert "Prometheus' view not read" in done.stderr
    record = json.loads((tmp_path / "load-cluster.json").read_text())
    assert record["failures"] == 10 and record["vs_prometheus"] is None
