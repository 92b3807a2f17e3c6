"""The whole platform as the cluster would receive it, for the cross-cutting security rules.

Every value combination the chart tests render (default, values-kind.yaml, every option on),
each WITH Airflow; plus the Airflow task pod the KubernetesExecutor builds from the rendered
pod template, and the kustomize builds of k8s/ (the retraining CronJob and Job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.support.helm import CHART_DIR, REPO_ROOT, render_chart, tool

KIND_VALUES = CHART_DIR / "values-kind.yaml"
ALL_OPTIONS: dict[str, Any] = {
    "api-data": {"dataset": {"fetch": {"enabled": True}}, "restartToken": {"enabled": True}},
    "inference": {"autoscaling": {"enabled": True}},
    "airflow": {"triggerer": {"enabled": True}},
}
RENDERS: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "default": ({}, []),
    "kind": ({}, [KIND_VALUES]),
    "all-options": (ALL_OPTIONS, [KIND_VALUES]),
}


@dataclass(frozen=True)
class Platform:
    name: str
    docs: list[dict[str, Any]]  # the chart's objects
    worker_pod: dict[str, Any]  # an Airflow task pod, from the rendered pod template
    k8s: list[dict[str, Any]]  # what k8s/ adds (retraining CronJob, Job, NetworkPolicy)

    @property
    def everything(self) -> list[dict[str, Any]]:
        return [*self.docs, self.worker_pod, *self.k8s]


def kustomize(path: str) -> list[dict[str, Any]]:
    import subprocess

    proc = subprocess.run(
        [tool("kubectl"), "kustomize", str(REPO_ROOT / path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="session")
def k8s_objects() -> list[dict[str, Any]]:
    return kustomize("k8s") + kustomize("k8s/job")


def worker_pod_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (template,) = [
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-airflow-pod-template")
    ]
    pod: dict[str, Any] = yaml.safe_load(template["data"]["pod_template_file.yaml"])
    return pod


@pytest.fixture(scope="session", params=sorted(RENDERS))
def platform(request: pytest.FixtureRequest, k8s_objects: list[dict[str, Any]]) -> Platform:
    values, files = RENDERS[request.param]
    docs = render_chart(values, value_files=files)
    return Platform(request.param, docs, worker_pod_of(docs), k8s_objects)
