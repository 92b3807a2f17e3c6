"""What Kubernetes and the KubernetesExecutor accept: schema validation of every rendered
Airflow object and of every task's worker pod (kubernetes-validate, 1.33 and 1.35), checkov, and
the worker pods the provider's PodGenerator builds from the chart's pod template for every task of
every DAG in dags/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.airflow.conftest import render_airflow
from tests.support.helm import REPO_ROOT, find
from tests.support.scans import assert_clean, checkov

# Building the worker pods imports every DAG (~30 s); checkov takes ~30 s.
pytestmark = pytest.mark.slow

DAGS = REPO_ROOT / "dags"
KUBE_VERSIONS = ["1.33.0", "1.35.0"]
CHART_WORKER_CPU = "250m"  # values.yaml workers.resources.requests.cpu


def to_millicores(quantity: str | int) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def to_bytes(quantity: str | int) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    text = str(quantity)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


@pytest.fixture(scope="module")
def kind_docs() -> list[dict[str, Any]]:
    return render_airflow(kind=True)


@pytest.fixture(scope="module")
def pod_template_file(
    kind_docs: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("pod-template") / "pod_template_file.yaml"
    cm = find(kind_docs, "ConfigMap", "fm-airflow-pod-template")
    path.write_text(cm["data"]["pod_template_file.yaml"])
    return path


@pytest.fixture(scope="module")
def worker_pods(
    pod_template_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """A worker pod per task of every DAG, built in a fresh process (scratch AIRFLOW_HOME)."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.charts.airflow.worker_pods",
            str(pod_template_file),
            str(DAGS),
            str(home / "pods.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    pods: list[dict[str, Any]] = json.loads((home / "pods.json").read_text())
    return pods


@pytest.fixture(scope="module")
def manifest_dir(
    kind_docs: list[dict[str, Any]],
    pod_template_file: Path,
    worker_pods: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Every rendered Airflow object, the pod template and each worker pod, one file each."""
    root = tmp_path_factory.mktemp("airflow-manifests")
    for doc in kind_docs:
        (root / f"{doc['kind']}-{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
    (root / "pod-template.yaml").write_text(pod_template_file.read_text())
    for pod in worker_pods:
        (root / f"worker-{pod['dag_id']}-{pod['task_id']}.yaml").write_text(
            yaml.safe_dump(pod["pod"])
        )
    return root


class TestWorkerPods:
    def test_there_is_a_pod_for_every_task(self, worker_pods: list[dict[str, Any]]) -> None:
        dag_ids = {p["dag_id"] for p in worker_pods}
        expected = {path.stem for path in DAGS.glob("forest_cover_*.py")}
        assert expected and expected <= dag_ids

    def test_image_command_and_account(
        self, worker_pods: list[dict[str, Any]], kind_docs: list[dict[str, Any]]
    ) -> None:
        scheduler = find(kind_docs, "Deployment", "fm-airflow-scheduler")
        image = scheduler["spec"]["template"]["spec"]["containers"][0]["image"]
        for item in worker_pods:
            spec = item["pod"]["spec"]
            base = next(c for c in spec["containers"] if c["name"] == "base")
            assert base["image"] == image, item["task_id"]
            assert base["args"][:3] == [
                "python",
                "-m",
                "airflow.sdk.execution_time.execute_workload",
            ]
            assert spec["serviceAccountName"] == "fm-airflow-worker"
            assert spec["automountServiceAccountToken"] is False
            assert spec["restartPolicy"] == "Never"
            labels = item["pod"]["metadata"]["labels"]
            assert labels["dag_id"] == item["dag_id"]
            assert labels["forest-mlops/db-client"] == "true"

    def test_env_reaches_the_task(self, worker_pods: list[dict[str, Any]]) -> None:
        for item in worker_pods:
            base = next(c for c in item["pod"]["spec"]["containers"] if c["name"] == "base")
            env = {e["name"]: e for e in base["env"]}
            assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]["value"] == (
                "http://fm-airflow-api-server:8080/execution/"
            )
            assert env["FOREST_DATABASE_URL"]["value"].startswith(
                "mysql+pymysql://train:$(TRAIN_DB_PASSWORD)@"
            )
            assert "AIRFLOW_CONN_FOREST_MINIO_LOGS" in env
            assert env["AIRFLOW_IS_K8S_EXECUTOR_POD"]["value"] == "True"
            assert {"configMapRef": {"name": "fm-platform"}} in base["envFrom"]
            assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env

    def test_resources_follow_the_task_override(self, worker_pods: list[dict[str, Any]]) -> None:
        overridden = 0
        for item in worker_pods:
            base = next(c for c in item["pod"]["spec"]["containers"] if c["name"] == "base")
            override = item["override"]
            wanted = None
            if override:
                wanted = next(
                    (
                        c.get("resources")
                        for c in override["spec"]["containers"]
                        if c["name"] == "base"
                    ),
                    None,
                )
            if wanted:
                overridden += 1
                for part, quantities in wanted.items():
                    for resource, quantity in quantities.items():
                        assert base["resources"][part][resource] == quantity, item["task_id"]
            else:
                assert base["resources"]["requests"]["cpu"] == CHART_WORKER_CPU, item["task_id"]
        training = [p for p in worker_pods if p["dag_id"] == "forest_cover_model_training"]
        if training:
            bigger = [
                p
                for p in training
                if to_millicores(
                    next(c for c in p["pod"]["spec"]["containers"] if c["name"] == "base")[
                        "resources"
                    ]["requests"]["cpu"]
                )
                > to_millicores(CHART_WORKER_CPU)
            ]
            assert bigger, (
                "the training DAG's train task should ask for more than a default task pod"
            )
            assert overridden

    def test_worker_pods_keep_the_security_context(self, worker_pods: list[dict[str, Any]]) -> None:
        for item in worker_pods:
            spec = item["pod"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            for container in spec["containers"]:
                assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_kubernetes_validate(version: str, manifest_dir: Path) -> None:
    files = sorted(str(p) for p in manifest_dir.glob("*.yaml"))
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubernetes-validate"),
            "--strict",
            "--quiet",
            "-k",
            version,
            *files,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_checkov_has_no_unjustified_failure(manifest_dir: Path) -> None:
    report = checkov("-d", str(manifest_dir), "--framework", "kubernetes")["kubernetes"]
    # One file a rendered object: each must be among what checkov scanned.
    assert_clean(report, min_resources=len(list(manifest_dir.glob("*.yaml"))), min_passed=1000)
