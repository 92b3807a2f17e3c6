"""NetworkPolicies: only database clients (MLflow, inference, Airflow's task pods) reach MySQL,
only Airflow's control plane reaches PostgreSQL (its metadata DB), only S3 clients (MLflow,
Airflow, the bucket Job) reach MinIO; every pod of the chart is covered."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import find, render_chart

WORKLOADS = {"Deployment", "StatefulSet", "Job"}


def pod_labels(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] in WORKLOADS
    }


def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    return policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and In/NotIn/Exists/DoesNotExist expressions) as
    Kubernetes evaluates it."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def admits(policy: dict[str, Any], labels: dict[str, str], port: int) -> bool:
    """Whether an ingress policy lets a pod of this namespace with these labels in on `port`."""
    return any(
        any(matches(peer["podSelector"], labels) for peer in rule.get("from", []))
        and any(p["port"] == port for p in rule.get("ports", []))
        for rule in policy["spec"].get("ingress", [])
    )


def task_pod_labels(docs: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("pod-template")
    ]
    (text,) = cm["data"].values()
    labels: dict[str, str] = yaml.safe_load(text)["metadata"]["labels"]
    return labels


@pytest.fixture(scope="module")
def full_docs() -> list[dict[str, Any]]:
    """With Airflow: its pods are clients of both stores."""
    return render_chart()


class TestStores:
    def test_mysql_accepts_only_database_clients_on_3306(self, platform_docs):
        policy = find(platform_docs, "NetworkPolicy", "fm-mysql")
        assert selects(policy, pod_labels(platform_docs)["StatefulSet/fm-mysql"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert policy["spec"]["ingress"] == [
            {
                "from": [{"podSelector": {"matchLabels": {"forest-mlops/db-client": "true"}}}],
                "ports": [{"port": 3306, "protocol": "TCP"}],
            }
        ]

    def test_minio_accepts_only_s3_clients_on_9000(self, platform_docs):
        policy = find(platform_docs, "NetworkPolicy", "fm-minio")
        assert selects(policy, pod_labels(platform_docs)["StatefulSet/fm-minio"])
        assert not selects(policy, pod_labels(platform_docs)["Job/fm-minio-buckets-1"])
        assert policy["spec"]["ingress"] == [
            {
                "from": [{"podSelector": {"matchLabels": {"forest-mlops/s3-client": "true"}}}],
                "ports": [{"port": 9000, "protocol": "TCP"}],
            }
        ]

    def test_database_clients_are_mlflow_inference_and_airflow_task_pods(self, full_docs):
        clients = {
            name
            for name, labels in pod_labels(full_docs).items()
            if labels.get("forest-mlops/db-client") == "true"
        }
        # Airflow's control plane uses PostgreSQL only; its task pods read and write train_data.
        assert clients == {"Deployment/fm-mlflow", "Deployment/fm-inference"}
        mysql = find(full_docs, "NetworkPolicy", "fm-mysql")
        assert admits(mysql, task_pod_labels(full_docs), 3306)

    def test_postgresql_accepts_only_airflows_control_plane_on_5432(self, full_docs):
        policy = find(full_docs, "NetworkPolicy", "fm-postgresql")
        pods = pod_labels(full_docs)
        assert selects(policy, pods["StatefulSet/fm-postgresql"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        control_plane = {
            f"Deployment/fm-airflow-{c}" for c in ("api-server", "scheduler", "dag-processor")
        }
        for name, labels in pods.items():
            assert admits(policy, labels, 5432) == (name in control_plane), name
            assert not admits(policy, labels, 3306)
        assert not admits(policy, task_pod_labels(full_docs), 5432)

    def test_the_triggerer_reaches_postgresql_when_deployed(self):
        docs = render_chart({"airflow": {"triggerer": {"enabled": True}}})
        policy = find(docs, "NetworkPolicy", "fm-postgresql")
        assert admits(policy, pod_labels(docs)["Deployment/fm-airflow-triggerer"], 5432)

    def test_another_releases_airflow_is_not_let_in(self, full_docs):
        policy = find(full_docs, "NetworkPolicy", "fm-postgresql")
        scheduler = pod_labels(full_docs)["Deployment/fm-airflow-scheduler"]
        assert not admits(policy, scheduler | {"app.kubernetes.io/instance": "other"}, 5432)

    def test_s3_clients_are_mlflow_the_bucket_job_and_airflow(self, full_docs):
        clients = {
            name
            for name, labels in pod_labels(full_docs).items()
            if labels.get("forest-mlops/s3-client") == "true"
        }
        assert {"Deployment/fm-mlflow", "Job/fm-minio-buckets-1"} <= clients
        assert "Deployment/fm-airflow-api-server" in clients  # reads task logs from S3
        others = clients - {"Deployment/fm-mlflow", "Job/fm-minio-buckets-1"}
        assert all(name.split("/")[1].startswith("fm-airflow-") for name in others), others
        assert "Deployment/fm-inference" not in clients


class TestServices:
    @pytest.mark.parametrize(("name", "port"), [("fm-mlflow", 5000), ("fm-api-data", 8000)])
    def test_internal_services_accept_the_namespace_only(self, platform_docs, name, port):
        policy = find(platform_docs, "NetworkPolicy", name)
        assert selects(policy, pod_labels(platform_docs)[f"Deployment/{name}"])
        assert policy["spec"]["ingress"] == [
            {"from": [{"podSelector": {}}], "ports": [{"port": port, "protocol": "TCP"}]}
        ]

    def test_inference_accepts_any_source_on_8001_only(self, platform_docs):
        policy = find(platform_docs, "NetworkPolicy", "fm-inference")
        assert policy["spec"]["ingress"] == [{"ports": [{"port": 8001, "protocol": "TCP"}]}]

    def test_bucket_job_accepts_nothing(self, platform_docs):
        policy = find(platform_docs, "NetworkPolicy", "fm-minio-buckets")
        assert selects(policy, pod_labels(platform_docs)["Job/fm-minio-buckets-1"])
        assert "ingress" not in policy["spec"]

    def test_every_pod_is_selected_by_a_policy(self, platform_docs):
        policies = [d for d in platform_docs if d["kind"] == "NetworkPolicy"]
        for name, labels in pod_labels(platform_docs).items():
            assert any(selects(p, labels) for p in policies), name


class TestToggle:
    def test_off_renders_none(self):
        docs = render_chart(WITHOUT_AIRFLOW | {"networkPolicies": {"enabled": False}})
        assert "NetworkPolicy" not in {d["kind"] for d in docs}

    def test_on_in_kind_values(self, kind_docs):
        assert sum(d["kind"] == "NetworkPolicy" for d in kind_docs) == 7

    def test_no_policy_for_a_disabled_store(self):
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {
                "minio": {"enabled": False},
                "mlflow": {
                    "artifacts": {"s3EndpointUrl": "https://s3.corp", "existingSecret": "s"}
                },
            }
        )
        names = {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"}
        assert "fm-minio" not in names and "fm-minio-buckets" not in names
