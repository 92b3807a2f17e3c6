"""k8s/: the retraining CronJob and the one-off Job, as kustomize builds them.

They must validate against the Kubernetes API schemas, reference only names the chart really
renders, and run training with the env, Secrets and user the chart gives the training DAG's
task pods (the KubernetesExecutor pod template), so a Job and a DAG run train the same way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.platform.conftest import K8S_DIR, kustomize_build
from tests.support.helm import REPO_ROOT, find, pod_containers, render_chart
from tests.support.processes import VENV_BIN

RELEASE, NAMESPACE = "forest-mlops", "forest-mlops"


@pytest.fixture(scope="module")
def chart_docs() -> list[dict[str, Any]]:
    """The chart as skaffold installs it (values-kind.yaml, release and namespace of k8s/)."""
    return render_chart(
        value_files=[REPO_ROOT / "charts" / "forest-mlops" / "values-kind.yaml"],
        release=RELEASE,
        namespace=NAMESPACE,
    )


@pytest.fixture(scope="module")
def task_pod(chart_docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The KubernetesExecutor's pod template: what a DAG task (training included) runs in."""
    configmap = find(chart_docs, "ConfigMap", f"{RELEASE}-airflow-pod-template")
    (text,) = configmap["data"].values()
    pod: dict[str, Any] = yaml.safe_load(text)
    return pod


@pytest.fixture(scope="module")
def job(retrain_job_manifest: str) -> dict[str, Any]:
    (only,) = [doc for doc in yaml.safe_load_all(retrain_job_manifest) if doc]
    assert only["kind"] == "Job"
    return dict(only)


def train_container(obj: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_containers(obj)
    return container


def interpolated_env(container: dict[str, Any], secret_values: dict[str, str]) -> dict[str, str]:
    """The container's env as the kubelet resolves it ($(VAR) from earlier entries)."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), entry["value"]
            )
        elif "fieldRef" in entry["valueFrom"]:
            # The downward API (the pod's own name or node): the kubelet fills it per pod.
            env[entry["name"]] = f"<field {entry['valueFrom']['fieldRef']['fieldPath']}>"
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            key = f"{ref['name']}/{ref['key']}"
            env[entry["name"]] = secret_values.get(key, f"<{key}>")
    return env


@pytest.mark.parametrize("kube_version", ["1.33.0", "1.35.0"])
def test_kustomize_builds_validate_strictly(
    kube_version: str, retrain_manifest: str, retrain_job_manifest: str, tmp_path: Path
) -> None:
    paths = []
    for name, text in {"cronjob": retrain_manifest, "job": retrain_job_manifest}.items():
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(text)
    proc = subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "-k", kube_version, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == 3  # CronJob, NetworkPolicy, Job


def test_k8s_holds_only_what_the_chart_does_not_render(
    retrain_objects: list[dict[str, Any]], chart_docs: list[dict[str, Any]]
) -> None:
    rendered = {(d["kind"], d["metadata"]["name"]) for d in chart_docs}
    ours = {(d["kind"], d["metadata"]["name"]) for d in retrain_objects}
    assert ours == {("CronJob", "forest-mlops-retrain"), ("NetworkPolicy", "forest-mlops-retrain")}
    assert not ours & rendered


def test_the_references_exist_in_the_rendered_chart(
    retrain_cronjob: dict[str, Any], chart_docs: list[dict[str, Any]]
) -> None:
    container = train_container(retrain_cronjob)
    for entry in container["env"]:
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            secret = find(chart_docs, "Secret", ref["name"])
            assert ref["key"] in {**secret.get("data", {}), **secret.get("stringData", {})}
    for source in container["envFrom"]:
        find(chart_docs, "ConfigMap", source["configMapRef"]["name"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    service = find(chart_docs, "Service", env["FOREST_DB_HOST"])
    assert 3306 in {p["port"] for p in service["spec"]["ports"]}
    # The image is the chart's Airflow image (skaffold replaces both with the same build).
    airflow = find(chart_docs, "Deployment", f"{RELEASE}-airflow-scheduler")
    assert {c["image"] for c in pod_containers(airflow)} == {container["image"]}
    assert container["image"].startswith("forest-mlops/airflow:")


def test_the_pods_pass_the_chart_network_policy_to_mysql(
    retrain_cronjob: dict[str, Any], chart_docs: list[dict[str, Any]]
) -> None:
    policy = find(chart_docs, "NetworkPolicy", f"{RELEASE}-mysql")
    labels = retrain_cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    allowed = [
        peer["podSelector"]["matchLabels"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    ]
    assert any(selector.items() <= labels.items() for selector in allowed)


def test_training_gets_the_env_secrets_and_user_of_the_dag_task_pods(
    retrain_cronjob: dict[str, Any], task_pod: dict[str, Any]
) -> None:
    container = train_container(retrain_cronjob)
    (task,) = task_pod["spec"]["containers"]
    secrets = {f"{RELEASE}-mysql/train-password": "s3cret"}
    ours, theirs = interpolated_env(container, secrets), interpolated_env(task, secrets)
    assert ours["FOREST_DATABASE_URL"] == theirs["FOREST_DATABASE_URL"]
    assert ours["FOREST_DATABASE_URL"] == (
        f"mysql+pymysql://train:s3cret@{RELEASE}-mysql:3306/train_data"
    )
    assert container["envFrom"] == task["envFrom"]
    pod_spec = retrain_cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    for key in ("runAsUser", "runAsGroup", "runAsNonRoot"):
        assert pod_spec["securityContext"][key] == task_pod["spec"]["securityContext"][key]
    assert container["securityContext"] == task["securityContext"]
    assert container["command"] + container["args"] == ["forest-mlops", "train"]
    # MLflow's login: the same train user and Secret as the task pods (basic auth).
    ours = {e["name"]: e for e in container["env"]}
    theirs = {e["name"]: e for e in task["env"]}
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert ours[name] == theirs[name]
    assert ours["MLFLOW_TRACKING_USERNAME"]["value"] == "train"
    assert ours["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-mlflow-auth",
        "key": "train-password",
    }


def test_training_gets_the_resources_of_the_dag_training_task(
    retrain_cronjob: dict[str, Any],
) -> None:
    """The Job trains like the DAG's train_candidates task, whose pod_override sets these."""
    import importlib.util

    path = REPO_ROOT / "dags" / "forest_cover_model_training.py"
    spec = importlib.util.spec_from_file_location("forest_training_dag_for_k8s_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (override,) = module.TRAINING_POD["pod_override"].spec.containers
    container = train_container(retrain_cronjob)
    assert container["resources"] == {
        "requests": override.resources.requests,
        "limits": override.resources.limits,
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    for variable in override.env or []:
        assert env[variable.name] == variable.value
    # Thread counts are the training code's business (forest_mlops.training.threads): neither
    # the task nor the Job may pin them differently.
    override_env = {variable.name for variable in override.env or []}
    assert {"OMP_NUM_THREADS", "FOREST_TRAINING_JOBS"} & (set(env) - override_env) == set()


def test_the_cronjob_is_bounded_and_suspended(retrain_cronjob: dict[str, Any]) -> None:
    spec = retrain_cronjob["spec"]
    assert spec["suspend"] is True and spec["concurrencyPolicy"] == "Forbid"
    job_spec = spec["jobTemplate"]["spec"]
    assert job_spec["backoffLimit"] <= 2
    assert 0 < job_spec["activeDeadlineSeconds"] <= 4 * 3600
    assert job_spec["ttlSecondsAfterFinished"] > 0
    pod_spec = job_spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["automountServiceAccountToken"] is False
    container = train_container(retrain_cronjob)
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_the_one_off_job_is_the_cronjob_template(
    job: dict[str, Any], retrain_cronjob: dict[str, Any]
) -> None:
    template = retrain_cronjob["spec"]["jobTemplate"]
    assert job["spec"] == template["spec"]
    assert job["metadata"]["labels"] == template["metadata"]["labels"]
    assert job["metadata"]["name"] == "forest-mlops-retrain-once"
    assert job["metadata"]["namespace"] == NAMESPACE


def test_release_name_and_namespace_are_one_edit_each(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, copy)
    release = copy / "base" / "release.yaml"
    release.write_text(release.read_text().replace("release: forest-mlops", "release: demo"))
    kustomization = copy / "base" / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("namespace: forest-mlops", "namespace: lab")
    )
    for path in (copy, copy / "job"):
        text = kustomize_build(path)
        assert "forest-mlops-" not in text and "RELEASE" not in text and "CRONJOB" not in text
        for obj in yaml.safe_load_all(text):
            assert obj["metadata"]["namespace"] == "lab"
            assert obj["metadata"]["name"].startswith("demo-retrain")
        assert "name: demo-mysql" in text and "name: demo-platform" in text
        assert "@$(FOREST_DB_HOST):3306" in text and "value: demo-mysql" in text


def test_secrets_come_only_from_secret_references(
    retrain_manifest: str, retrain_job_manifest: str
) -> None:
    for obj in yaml.safe_load_all(retrain_manifest + "\n---\n" + retrain_job_manifest):
        if obj is None or obj["kind"] not in {"CronJob", "Job"}:
            continue
        for entry in train_container(obj)["env"]:
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY", entry["name"]):
                assert "secretKeyRef" in entry.get("valueFrom", {}), entry
            assert "minioadmin" not in str(entry.get("value", ""))
