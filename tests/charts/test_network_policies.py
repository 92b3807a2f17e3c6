"""Ingress NetworkPolicies, one server at a time: only database clients (MLflow, inference,
Airflow's task pods) reach MySQL, only Airflow's control plane reaches PostgreSQL (its metadata
DB), only S3 clients (MLflow, Airflow, the bucket Job) reach MinIO, only MLflow's clients
(inference, the retraining Job, the training DAG's task pods) reach MLflow, only the extraction
DAG's task pods reach the data API, only Airflow's task pods reach its api-server; every pod of
the chart is covered. Egress, and every flow end to end: tests/charts/test_network_flows.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import REPO_ROOT, find, render_chart, tool
from tests.support.netpol import matches

WORKLOADS = {"Deployment", "StatefulSet", "Job"}


def pod_labels(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] in WORKLOADS
    }


def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    return policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


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


# The labels the KubernetesExecutor adds to a task pod, from Airflow's own code
# (PodGenerator.build_labels_for_k8s_executor_pod), run in a process of its own with a scratch
# AIRFLOW_HOME (Airflow reads its configuration at import).
EXECUTOR_LABELS = """
import json, sys
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
print(json.dumps({dag_id: PodGenerator.build_labels_for_k8s_executor_pod(
    dag_id=dag_id, task_id="a_task", try_number=1, airflow_worker="1",
    run_id="scheduled__2026-12-05T06:00:00+00:00") for dag_id in sys.argv[1:]}))
"""
DAGS = ("forest_cover_model_training", "forest_cover_data_extraction")


@pytest.fixture(scope="module")
def task_pods(
    full_docs: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str]]:
    """dag_id -> the labels of that DAG's task pods: the pod template's and the executor's."""
    home = tmp_path_factory.mktemp("airflow-home")
    proc = subprocess.run(
        [sys.executable, "-c", EXECUTOR_LABELS, *DAGS],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "AIRFLOW_HOME": str(home),
             "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
             "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    executor = json.loads(proc.stdout.strip().splitlines()[-1])
    return {dag_id: task_pod_labels(full_docs) | executor[dag_id] for dag_id in DAGS}


def retrain_job_labels() -> dict[str, str]:
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(REPO_ROOT / "k8s")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (cronjob,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "CronJob"]
    labels: dict[str, str] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


class TestMlflow:
    """Before issue 21 MLflow admitted every pod of the namespace (`podSelector: {}`): the
    api-data, MySQL and extraction-task cases below fail on that policy."""

    def test_only_inference_the_two_dags_task_pods_and_the_retrain_job_get_in(
        self, full_docs, task_pods
    ):
        policy = find(full_docs, "NetworkPolicy", "fm-mlflow")
        assert selects(policy, pod_labels(full_docs)["Deployment/fm-mlflow"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        pods = pod_labels(full_docs)
        admitted = {name for name, labels in pods.items() if admits(policy, labels, 5000)}
        assert admitted == {"Deployment/fm-inference"}
        assert admits(policy, retrain_job_labels(), 5000)
        assert admits(policy, task_pods["forest_cover_model_training"], 5000)
        # champion_batch_accuracy loads the champion (forest_mlops.monitoring.batch_accuracy).
        assert admits(policy, task_pods["forest_cover_data_extraction"], 5000)
        other = task_pods["forest_cover_model_training"] | {"app.kubernetes.io/instance": "x"}
        assert not admits(policy, other, 5000)
        assert not admits(policy, task_pods["forest_cover_model_training"], 3306)

    def test_the_dags_it_admits_are_the_training_and_extraction_dags(self, full_docs):
        dag_ids = [
            re.findall(r'dag_id="([^"]+)"', (REPO_ROOT / "dags" / f"{name}.py").read_text())[0]
            for name in ("forest_cover_model_training", "forest_cover_data_extraction")
        ]
        chart = yaml.safe_load((REPO_ROOT / "charts/forest-mlops/values.yaml").read_text())
        assert chart["networkPolicies"]["mlflowClientDags"] == dag_ids


class TestAirflowApiServer:
    """Before issue 21 the api-server admitted any source on its port: every case of
    test_only_task_pods_get_in that expects a refusal fails on that policy."""

    def test_only_task_pods_get_in(self, full_docs, task_pods):
        policy = find(full_docs, "NetworkPolicy", "fm-airflow-api-server")
        pods = pod_labels(full_docs)
        assert selects(policy, pods["Deployment/fm-airflow-api-server"])
        (port,) = [
            p["containerPort"]
            for p in find(full_docs, "Deployment", "fm-airflow-api-server")["spec"]["template"][
                "spec"
            ]["containers"][0]["ports"]
            if p["name"] == "api"
        ]

        def lets_in(labels: dict[str, str]) -> bool:
            return any(
                any(matches(peer["podSelector"], labels) for peer in rule.get("from", []))
                and any(p["port"] == "api" for p in rule.get("ports", []))
                for rule in policy["spec"]["ingress"]
            )

        assert port == 8080
        assert all(rule.get("from") for rule in policy["spec"]["ingress"])  # no open rule
        assert {n for n, labels in pods.items() if lets_in(labels)} == set()
        assert lets_in(task_pods["forest_cover_model_training"])
        assert lets_in(task_pods["forest_cover_data_extraction"])
        assert not lets_in(retrain_job_labels())
        other = task_pods["forest_cover_data_extraction"] | {"app.kubernetes.io/instance": "x"}
        assert not lets_in(other)


class TestServices:
    def test_the_data_api_admits_only_the_extraction_dags_task_pods(self, full_docs, task_pods):
        """Before issue 21 it admitted every pod of the namespace (`podSelector: {}`): the
        MLflow, inference and training-task cases below fail on that policy."""
        policy = find(full_docs, "NetworkPolicy", "fm-api-data")
        pods = pod_labels(full_docs)
        assert selects(policy, pods["Deployment/fm-api-data"])
        # Prometheus scrapes its /metrics, on the same port.
        admitted = {name for name, labels in pods.items() if admits(policy, labels, 8000)}
        assert admitted == {"Deployment/fm-prometheus"}
        assert admits(policy, task_pods["forest_cover_data_extraction"], 8000)
        assert not admits(policy, task_pods["forest_cover_model_training"], 8000)
        assert not admits(policy, retrain_job_labels(), 8000)
        other = task_pods["forest_cover_data_extraction"] | {"app.kubernetes.io/instance": "x"}
        assert not admits(policy, other, 8000)

    def test_the_dag_it_admits_is_the_extraction_dag(self):
        text = (REPO_ROOT / "dags" / "forest_cover_data_extraction.py").read_text()
        (dag_id,) = re.findall(r'dag_id="([^"]+)"', text)
        chart = yaml.safe_load((REPO_ROOT / "charts/forest-mlops/values.yaml").read_text())
        assert chart["networkPolicies"]["apiDataClientDags"] == [dag_id]

    def test_inference_accepts_any_source_on_8001_only(self, platform_docs):
        policy = find(platform_docs, "NetworkPolicy", "fm-inference")
        assert policy["spec"]["ingress"] == [{"ports": [{"port": 8001, "protocol": "TCP"}]}]

    def test_without_its_scrape_the_data_api_does_not_admit_prometheus(self):
        docs = render_chart(WITHOUT_AIRFLOW | {"prometheus": {"scrape": {"apiData": False}}})
        policy = find(docs, "NetworkPolicy", "fm-api-data")
        assert not admits(policy, pod_labels(docs)["Deployment/fm-prometheus"], 8000)

    def test_prometheus_accepts_perses_alone(self, platform_docs):
        """Its HTTP API has no login: people reach it with port-forward, which no policy
        filters; the one pod that queries it is Perses (its datasource proxy), on 9090."""
        policy = find(platform_docs, "NetworkPolicy", "fm-prometheus")
        labels = pod_labels(platform_docs)
        assert selects(policy, labels["Deployment/fm-prometheus"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert admits(policy, labels["Deployment/fm-perses"], 9090)
        assert not admits(policy, labels["Deployment/fm-perses"], 9091)
        others = [name for name in labels if name != "Deployment/fm-perses"]
        assert others and not [n for n in others if admits(policy, labels[n], 9090)]

    def test_perses_accepts_nothing(self, platform_docs):
        """No login either: port-forward only, like Prometheus."""
        policy = find(platform_docs, "NetworkPolicy", "fm-perses")
        assert selects(policy, pod_labels(platform_docs)["Deployment/fm-perses"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert "ingress" not in policy["spec"]

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
        # 11 ingress policies (the StatsD exporter's, kube-state-metrics' and Perses' among
        # them); egress: the default-deny, the MySQL, S3, MLflow and inference clients',
        # Prometheus' scrapes, kube-state-metrics' Kubernetes API and Perses' queries to
        # Prometheus (the Airflow ones are not rendered without Airflow).
        kinds = [d["spec"]["policyTypes"] for d in kind_docs if d["kind"] == "NetworkPolicy"]
        assert kinds.count(["Ingress"]) == 11
        assert kinds.count(["Egress"]) == 8

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
