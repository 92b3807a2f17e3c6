"""NetworkPolicies: only database clients (MLflow, inference, Airflow) reach MySQL, only S3
clients (MLflow, Airflow, the bucket Job) reach MinIO; every pod of the chart is covered."""

from __future__ import annotations

from typing import Any

import pytest

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

    def test_database_clients_are_mlflow_inference_and_airflow(self, full_docs):
        clients = {
            name
            for name, labels in pod_labels(full_docs).items()
            if labels.get("forest-mlops/db-client") == "true"
        }
        assert {"Deployment/fm-mlflow", "Deployment/fm-inference"} <= clients
        # Airflow's metadata DB is on MySQL: without the label its pods could not start.
        components = ("api-server", "scheduler", "dag-processor")
        airflow = {f"Deployment/fm-airflow-{c}" for c in components}
        assert airflow <= clients
        others = clients - {"Deployment/fm-mlflow", "Deployment/fm-inference"}
        assert all(name.split("/")[1].startswith("fm-airflow-") for name in others), others

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
        assert sum(d["kind"] == "NetworkPolicy" for d in kind_docs) == 6

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
