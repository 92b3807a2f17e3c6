"""The umbrella chart as a whole: lint, dependencies, the renders CI uses, the exact inventory,
the R-platform ConfigMap and NOTES.txt."""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest
import yaml

from tests.charts.conftest import KIND_VALUES, WITHOUT_AIRFLOW
from tests.support.helm import (
    CHART_DIR,
    HelmError,
    container_env,
    find,
    helm,
    lint_chart,
    render_chart,
    render_notes,
)

COMPONENTS = [
    "mysql",
    "postgresql",
    "minio",
    "mlflow",
    "api-data",
    "inference",
    "airflow",
    "prometheus",
]

# Everything the chart renders with its default values, Airflow aside (kind, name).
DEFAULT_INVENTORY = {
    ("ConfigMap", "fm-mysql-config"),
    ("ConfigMap", "fm-mysql-initdb"),
    ("ConfigMap", "fm-platform"),
    ("ConfigMap", "fm-prometheus"),
    ("ConfigMap", "fm-statsd-exporter"),
    ("ConfigMap", "fm-perses"),
    ("ConfigMap", "fm-perses-provisioning"),
    ("Deployment", "fm-api-data"),
    ("Deployment", "fm-inference"),
    ("Deployment", "fm-mlflow"),
    ("Deployment", "fm-prometheus"),
    ("Deployment", "fm-statsd-exporter"),
    ("Deployment", "fm-kube-state-metrics"),
    ("Deployment", "fm-perses"),
    ("Job", "fm-minio-buckets-1"),
    ("NetworkPolicy", "fm-api-data"),
    ("NetworkPolicy", "fm-default-egress"),
    ("NetworkPolicy", "fm-inference"),
    ("NetworkPolicy", "fm-inference-clients-egress"),
    ("NetworkPolicy", "fm-minio"),
    ("NetworkPolicy", "fm-minio-buckets"),
    ("NetworkPolicy", "fm-minio-clients-egress"),
    ("NetworkPolicy", "fm-mlflow"),
    ("NetworkPolicy", "fm-mlflow-clients-egress"),
    ("NetworkPolicy", "fm-mysql"),
    ("NetworkPolicy", "fm-mysql-clients-egress"),
    ("NetworkPolicy", "fm-postgresql"),
    ("NetworkPolicy", "fm-prometheus"),
    ("NetworkPolicy", "fm-prometheus-scrape-egress"),
    ("NetworkPolicy", "fm-statsd-exporter"),
    ("NetworkPolicy", "fm-kube-state-metrics"),
    ("NetworkPolicy", "fm-kube-state-metrics-kubernetes-api-egress"),
    ("NetworkPolicy", "fm-perses"),
    ("NetworkPolicy", "fm-perses-egress"),
    ("PersistentVolumeClaim", "fm-api-data"),
    ("Role", "fm-kube-state-metrics"),
    ("RoleBinding", "fm-kube-state-metrics"),
    ("Secret", "fm-inference"),
    ("Secret", "fm-mlflow-auth"),
    ("Secret", "fm-minio"),
    ("Secret", "fm-minio-mlflow"),
    ("Secret", "fm-minio-airflow-logs"),
    ("ConfigMap", "fm-minio-policies"),
    ("Secret", "fm-mysql"),
    ("Secret", "fm-postgresql"),
    ("Service", "fm-api-data"),
    ("Service", "fm-inference"),
    ("Service", "fm-inference-headless"),
    ("Service", "fm-minio"),
    ("Service", "fm-minio-headless"),
    ("Service", "fm-mlflow"),
    ("Service", "fm-mlflow-metrics"),
    ("Service", "fm-mysql"),
    ("Service", "fm-mysql-headless"),
    ("Service", "fm-postgresql"),
    ("Service", "fm-postgresql-headless"),
    ("Service", "fm-prometheus"),
    ("Service", "fm-statsd-exporter"),
    ("Service", "fm-kube-state-metrics"),
    ("Service", "fm-perses"),
    ("ServiceAccount", "fm-kube-state-metrics"),
    ("StatefulSet", "fm-minio"),
    ("StatefulSet", "fm-mysql"),
    ("StatefulSet", "fm-postgresql"),
}


# The umbrella's own objects, there whatever components are on: the shared settings and the
# release's default-deny egress policy.
UMBRELLA = {("ConfigMap", "fm-platform"), ("NetworkPolicy", "fm-default-egress")}


def inventory(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(doc["kind"], doc["metadata"]["name"]) for doc in docs}


def only(component: str) -> dict[str, Any]:
    return {name: {"enabled": name == component} for name in COMPONENTS}


class TestLint:
    @pytest.mark.parametrize("value_files", [[], [KIND_VALUES]], ids=["default", "kind"])
    def test_lint_strict_passes(self, value_files):
        proc = lint_chart(value_files=value_files)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "0 chart(s) failed" in proc.stdout

    def test_every_subchart_is_a_local_dependency_with_an_enabled_condition(self):
        chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
        conditions = {dep["name"]: dep["condition"] for dep in chart["dependencies"]}
        assert conditions == {name: f"{name}.enabled" for name in COMPONENTS}
        assert all("repository" not in dep for dep in chart["dependencies"])

    def test_helm_dependency_list_finds_every_subchart_unpacked(self):
        out = helm("dependency", "list", str(CHART_DIR)).stdout
        rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[1:] if line.strip()}
        assert rows == dict.fromkeys(COMPONENTS, "unpacked")

    def test_helm_dependency_build_keeps_the_folders(self, tmp_path):
        # On a copy (symlinks resolved): build writes Chart.lock and must not fetch or replace.
        copy = tmp_path / "forest-mlops"
        shutil.copytree(CHART_DIR, copy, symlinks=False)
        helm("dependency", "build", str(copy))
        subcharts = sorted(p.name for p in (copy / "charts").iterdir())
        assert subcharts == sorted(COMPONENTS)
        assert render_chart(chart=copy)


class TestRenders:
    def test_default_inventory_is_exact(self, platform_docs):
        assert inventory(platform_docs) == DEFAULT_INVENTORY

    def test_kind_values_render_the_same_objects(self, kind_docs):
        assert inventory(kind_docs) == DEFAULT_INVENTORY

    def test_airflow_adds_only_its_own_objects(self):
        with_airflow = inventory(render_chart())
        assert with_airflow > DEFAULT_INVENTORY
        extra = with_airflow - DEFAULT_INVENTORY
        assert all(name.startswith("fm-airflow") for _, name in extra), sorted(extra)

    @pytest.mark.parametrize(
        ("component", "expected"),
        [
            ("mysql", {"ConfigMap", "Secret", "Service", "StatefulSet", "NetworkPolicy"}),
            ("postgresql", {"Secret", "Service", "StatefulSet", "NetworkPolicy"}),
            ("minio", {"Secret", "Service", "StatefulSet", "Job", "NetworkPolicy", "ConfigMap"}),
            ("api-data", {"Deployment", "Service", "PersistentVolumeClaim", "NetworkPolicy"}),
        ],
    )
    def test_one_self_sufficient_component_alone(self, component, expected):
        docs = render_chart(only(component))
        names = inventory(docs) - UMBRELLA
        assert {kind for kind, _ in names} == expected
        assert all(name.startswith(f"fm-{component}") for _, name in names), sorted(names)

    def test_prometheus_alone_scrapes_only_itself(self):
        values = only("prometheus") | {
            "prometheus": {
                "enabled": True,
                "scrape": {"inference": False, "apiData": False, "mlflow": False},
                "statsdExporter": {"enabled": False},
                "kubeStateMetrics": {"enabled": False},
                "perses": {"enabled": False},
            }
        }
        docs = render_chart(values)
        assert inventory(docs) == UMBRELLA | {
            ("ConfigMap", "fm-prometheus"),
            ("Deployment", "fm-prometheus"),
            ("Service", "fm-prometheus"),
            ("NetworkPolicy", "fm-prometheus"),
            ("NetworkPolicy", "fm-prometheus-scrape-egress"),
        }
        egress = find(docs, "NetworkPolicy", "fm-prometheus-scrape-egress")
        assert "egress" not in egress["spec"]  # DNS only (fm-default-egress)

    def test_mlflow_alone_against_external_database_and_s3(self):
        values = only("mlflow") | {
            "mlflow": {
                "enabled": True,
                "database": {"host": "db.example.org", "existingSecret": "my-db"},
                "artifacts": {"s3EndpointUrl": "https://s3.example.org", "existingSecret": "my-s3"},
            }
        }
        docs = render_chart(values)
        assert inventory(docs) == UMBRELLA | {
            ("Deployment", "fm-mlflow"),
            ("Service", "fm-mlflow"),
            ("Service", "fm-mlflow-metrics"),  # its metrics sidecar, scraped or not
            ("NetworkPolicy", "fm-mlflow"),
            ("NetworkPolicy", "fm-mlflow-clients-egress"),
            ("Secret", "fm-mlflow-auth"),  # its logins: MLflow always runs with auth
        }

    def test_inference_alone_against_external_registry(self):
        values = only("inference") | {
            "platform": {"mlflowTrackingUri": "http://mlflow.example.org"},
            "inference": {"enabled": True, "predictionLog": {"enabled": False}},
        }
        docs = render_chart(values)
        assert {name for _, name in inventory(docs)} == {
            "fm-platform",
            "fm-default-egress",
            "fm-inference",
            "fm-inference-clients-egress",
            "fm-inference-headless",
        }

    def test_airflow_alone_renders_only_airflow_objects(self):
        # Against its own metadata database: the chart's PostgreSQL is a component of its own.
        # Without Prometheus there is no StatsD exporter to send to: metrics off too.
        values = only("airflow") | {
            "airflow": {
                "enabled": True,
                "database": {"host": "pg.example.org", "existingSecret": "my-pg"},
                "metrics": {"statsd": {"enabled": False}},
            }
        }
        docs = render_chart(values)
        names = {name for _, name in inventory(docs) - UMBRELLA}
        assert names and all(name.startswith("fm-airflow") for name in names), sorted(names)
        assert "fm-airflow-statsd-egress" not in names

    def test_airflow_without_a_metadata_database_is_refused(self):
        with pytest.raises(HelmError, match=r"airflow\.enabled needs a metadata database"):
            render_chart(only("airflow"))

    def test_existing_postgresql_secret_needs_airflow_told(self):
        with pytest.raises(HelmError, match=r"set airflow\.database\.existingSecret"):
            render_chart({"postgresql": {"auth": {"existingSecret": "corp-pg"}}})

    def test_every_object_carries_the_release_namespace(self, platform_docs):
        assert {doc["metadata"].get("namespace") for doc in platform_docs} == {"forest"}


class TestPlatformConfigMap:
    def test_shared_settings_point_at_the_release_services(self, platform_docs):
        data = find(platform_docs, "ConfigMap", "fm-platform")["data"]
        assert data == {
            "MLFLOW_TRACKING_URI": "http://fm-mlflow:5000",
            "FOREST_API_URL": "http://fm-api-data:8000",
            "FOREST_MODEL_NAME": "forest-cover-type",
            "FOREST_GROUP_NUMBER": "1",
            "FOREST_MAX_REQUESTS_PER_WINDOW": "40",
            "FOREST_MIN_NEW_ROWS_FRACTION": "0.1",
            "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }

    def test_the_collection_rule_is_the_platforms_default_and_parses(self, platform_docs):
        # The chart renders the stop rule the code would use anyway, and the task pods'
        # settings class reads exactly what is rendered.
        from forest_mlops.ingestion import IngestionSettings
        from forest_mlops.ingestion.fetch import WindowRule

        data = find(platform_docs, "ConfigMap", "fm-platform")["data"]
        env = {"FOREST_DATABASE_URL": "sqlite://", **data}
        fields = {
            k.removeprefix("FOREST_").lower(): v for k, v in env.items() if k.startswith("FOREST_")
        }
        settings = IngestionSettings(**fields)
        assert settings.window_rule() == WindowRule()

    @pytest.mark.parametrize(
        ("collection", "message"),
        [
            ({"maxRequestsPerWindow": 0}, "maxRequestsPerWindow': minimum: got 0, want 1"),
            ({"minNewRowsFraction": 1}, "minNewRowsFraction': exclusiveMaximum: got 1, want 1"),
            ({"minNewRowsFraction": "0.1"}, "minNewRowsFraction': got string, want number"),
        ],
    )
    def test_a_bad_collection_rule_fails_the_render(self, collection, message):
        with pytest.raises(HelmError, match=re.escape(message)):
            render_chart(
                WITHOUT_AIRFLOW | {"platform": {"collection": collection}},
                show_only=["templates/platform-configmap.yaml"],
            )

    @pytest.mark.parametrize(("telemetry", "disabled"), [(None, "true"), (True, "false")])
    def test_mlflow_telemetry_reaches_the_server_and_inference(self, telemetry, disabled):
        # Airflow's pods and the retrain Job take the whole ConfigMap (envFrom); these two
        # containers pick keys, so each must pick this one too.
        values = WITHOUT_AIRFLOW
        if telemetry is not None:
            values = values | {"platform": {"mlflowTelemetry": telemetry}}
        docs = render_chart(values)
        for deployment, name in (("fm-mlflow", "mlflow"), ("fm-inference", "inference")):
            spec = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]
            item = next(c for c in spec["containers"] if c["name"] == name)
            assert container_env(docs, item)["MLFLOW_DISABLE_TELEMETRY"] == disabled, deployment

    def test_external_urls_override_the_defaults(self):
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {"platform": {"mlflowTrackingUri": "http://mlflow.example.org", "groupNumber": 7}},
            show_only=["templates/platform-configmap.yaml"],
        )
        data = docs[0]["data"]
        assert (data["MLFLOW_TRACKING_URI"], data["FOREST_GROUP_NUMBER"]) == (
            "http://mlflow.example.org",
            "7",
        )


class TestNotes:
    @pytest.fixture(scope="class")
    def notes(self) -> str:
        return render_notes()

    @pytest.mark.parametrize(
        "command",
        [
            "kubectl -n forest port-forward svc/fm-airflow-api-server 8080:8080",
            "kubectl -n forest port-forward svc/fm-mlflow 5000:5000",
            "kubectl -n forest port-forward svc/fm-minio 9001:9001",
            "kubectl -n forest port-forward svc/fm-inference 8001:8001",
            "kubectl -n forest port-forward svc/fm-api-data 8000:8000",
            "kubectl -n forest port-forward svc/fm-prometheus 9090:9090",
        ],
    )
    def test_port_forward_command_for_every_ui(self, notes, command):
        assert command in notes

    @pytest.mark.parametrize(
        "command",
        [
            "get secret fm-airflow -o jsonpath='{.data.admin-password}'",
            "get secret fm-minio -o jsonpath='{.data.root-user}'",
            "get secret fm-minio -o jsonpath='{.data.root-password}'",
            "get secret fm-mysql -o jsonpath='{.data.train-password}'",
            "get secret fm-postgresql -o jsonpath='{.data.airflow-password}'",
            "get secret fm-inference -o jsonpath='{.data.reload-token}'",
        ],
    )
    def test_how_to_read_every_credential(self, notes, command):
        assert command in notes

    def test_disabled_components_are_not_listed(self):
        notes = render_notes(
            {"airflow": {"enabled": False}, "minio": {"enabled": False}}
            | {
                "mlflow": {
                    "artifacts": {"s3EndpointUrl": "https://s3.example.org", "existingSecret": "s3"}
                }
            }
        )
        assert "fm-airflow" not in notes and "fm-minio" not in notes
        assert "svc/fm-mlflow 5000:5000" in notes

    def test_existing_secret_names_are_the_ones_printed(self):
        notes = render_notes(
            {
                "mysql": {"auth": {"existingSecret": "corp-mysql"}},
                "mlflow": {"database": {"existingSecret": "corp-mysql"}},
                "inference": {"predictionLog": {"existingSecret": "corp-mysql"}},
            }
        )
        assert "get secret corp-mysql -o jsonpath='{.data.train-password}'" in notes
