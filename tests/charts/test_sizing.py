"""The platform fits the kind cluster the docs ask for (issue 14, defect 4).

A pod whose requests fit no node stays Pending and its DAG run hangs. The budget is read from
docs/KUBERNETES.md ("at least **N CPUs and M GiB of memory**" of Docker), so the doc and the
chart cannot drift apart. What must fit at once: every workload of the chart with
values-kind.yaml (Airflow on; init containers counted as the scheduler counts them), kind's own
system pods, the training DAG's candidate pods (as many at once as its max_active_tasks) or its
evaluate pod, a retraining Job started while it trains, and one more ordinary task pod.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.support.helm import CHART_DIR, REPO_ROOT, render_chart

# kind's own pods: kube-apiserver 250m, controller-manager 200m, scheduler 100m, etcd 100m/100Mi,
# two CoreDNS 100m/70Mi each, kindnet 100m/50Mi per node (three nodes), rounded up.
KIND_SYSTEM = {"cpu": 1.2, "memory": 0.5 * 2**30}

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}


def quantity(text: Any) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, text
    return float(match.group(1)) * _UNITS.get(match.group(2), 1)


def pod_requests(spec: dict[str, Any]) -> dict[str, float]:
    """Effective requests of a pod spec: max(largest init container, sum of containers)."""
    out = {}
    for resource in ("cpu", "memory"):

        def req(c: dict[str, Any], r: str = resource) -> float:
            return quantity(c.get("resources", {}).get("requests", {}).get(r, 0))

        main = sum(req(c) for c in spec.get("containers", []))
        init = max([req(c) for c in spec.get("initContainers", [])] or [0])
        out[resource] = max(main, init)
    return out


@pytest.fixture(scope="module")
def budget() -> dict[str, float]:
    text = (REPO_ROOT / "docs" / "KUBERNETES.md").read_text()
    match = re.search(r"at least \*\*(\d+) CPUs and (\d+) GiB of memory\*\*", text)
    assert match, "docs/KUBERNETES.md no longer states the Docker budget"
    return {"cpu": float(match.group(1)), "memory": float(match.group(2)) * 2**30}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render_chart(value_files=[CHART_DIR / "values-kind.yaml"])


def workload_requests(docs: list[dict[str, Any]]) -> dict[str, float]:
    total = {"cpu": 0.0, "memory": 0.0}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            replicas = doc["spec"].get("replicas", 1)
            for key, value in pod_requests(doc["spec"]["template"]["spec"]).items():
                total[key] += replicas * value
    return total


def task_pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (cm,) = [
        d for d in docs if d["kind"] == "ConfigMap" and "pod-template" in d["metadata"]["name"]
    ]
    (text,) = cm["data"].values()
    return yaml.safe_load(text)["spec"]


def _training_dag() -> Any:
    import importlib.util

    path = REPO_ROOT / "dags" / "forest_cover_model_training.py"
    spec = importlib.util.spec_from_file_location("training_dag_for_sizing", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _merged(docs: list[dict[str, Any]], override: Any) -> dict[str, Any]:
    """The task pod with a task's executor_config override, as Airflow merges it."""
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
    from kubernetes.client import ApiClient

    base = PodGenerator.deserialize_model_dict({"spec": task_pod_spec(docs)})
    pod = PodGenerator.reconcile_pods(base, override)
    return dict(ApiClient().sanitize_for_serialization(pod)["spec"])


def training_pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod of the training DAG's evaluate step (it refits the winner), the biggest one."""
    return _merged(docs, _training_dag().TRAINING_POD["pod_override"])


def training_requests(docs: list[dict[str, Any]]) -> dict[str, float]:
    """What training holds at once: the DAG's candidate pods (max_active_tasks of them, each
    sized for its family; issue 23) or, later in the run, the evaluate step's single pod."""
    module = _training_dag()
    candidates = [
        pod_requests(_merged(docs, config["pod_override"]))
        for config in module.CANDIDATE_PODS.values()
    ]
    evaluate = pod_requests(training_pod_spec(docs))
    return {
        r: max(module.MAX_PODS * max(c[r] for c in candidates), evaluate[r])
        for r in ("cpu", "memory")
    }


def retrain_job_spec() -> dict[str, Any]:
    from tests.platform.conftest import K8S_DIR, kustomize_build

    for doc in yaml.safe_load_all(kustomize_build(K8S_DIR)):
        if doc and doc["kind"] == "CronJob":
            return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    raise AssertionError("no CronJob in k8s/")


def test_everything_that_runs_at_once_fits_the_documented_cluster(
    docs: list[dict[str, Any]], budget: dict[str, float], airflow_home: Any
) -> None:
    platform = workload_requests(docs)
    parts = {
        "platform": platform,
        "kind system pods": KIND_SYSTEM,
        "training (candidate pods at once)": training_requests(docs),
        "retraining Job": pod_requests(retrain_job_spec()),
        "one more task pod": pod_requests(task_pod_spec(docs)),
    }
    for resource in ("cpu", "memory"):
        used = sum(part[resource] for part in parts.values())
        detail = {name: round(part[resource], 3) for name, part in parts.items()}
        assert used <= budget[resource], f"{resource}: {used} > {budget[resource]}: {detail}"


def test_no_single_pod_asks_for_more_than_the_cluster(
    docs: list[dict[str, Any]], budget: dict[str, float], airflow_home: Any
) -> None:
    module = _training_dag()
    candidates = [_merged(docs, c["pod_override"]) for c in module.CANDIDATE_PODS.values()]
    for spec in (training_pod_spec(docs), retrain_job_spec(), *candidates):
        for container in spec["containers"]:
            limits = container["resources"]["limits"]
            assert quantity(limits["cpu"]) <= budget["cpu"]
            assert quantity(limits["memory"]) <= budget["memory"]
