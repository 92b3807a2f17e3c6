"""The postgresql subchart: Airflow's metadata database. The official postgres image's contract
(POSTGRES_* env, PGDATA under the volume, uid 999, its own entrypoint), a generated password
that Airflow's control plane reads from the same Secret, probes without a password."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import yaml

from tests.charts.conftest import KIND_VALUES, WITHOUT_AIRFLOW
from tests.support.helm import CHART_DIR, container, container_env, find, render_chart

OFFLINE_VALUES = CHART_DIR / "values-offline.yaml"
SEED = "0123456789abcdef0123456789abcdef01234567"
PG_READY = ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "airflow", "-d", "airflow"]
CONTROL_PLANE = ["fm-airflow-api-server", "fm-airflow-scheduler", "fm-airflow-dag-processor"]


@pytest.fixture(scope="module")
def statefulset(platform_docs: list[dict[str, Any]]) -> dict[str, Any]:
    return find(platform_docs, "StatefulSet", "fm-postgresql")


@pytest.fixture(scope="module")
def server(statefulset: dict[str, Any]) -> dict[str, Any]:
    return container(statefulset, "postgresql")


@pytest.fixture(scope="module")
def full_docs() -> list[dict[str, Any]]:
    return render_chart()


class TestImageContract:
    def test_official_image_pinned(self, server):
        assert server["image"] == "postgres:17.6-bookworm"
        assert server["imagePullPolicy"] == "IfNotPresent"

    def test_the_images_own_entrypoint_and_command(self, statefulset, server):
        # docker-entrypoint.sh postgres: initdb on first start, then the server.
        assert "command" not in server and "args" not in server
        assert "initContainers" not in statefulset["spec"]["template"]["spec"]

    def test_user_database_and_data_directory(self, platform_docs, server):
        env = container_env(platform_docs, server)
        assert env["POSTGRES_USER"] == "airflow"
        assert env["POSTGRES_DB"] == "airflow"
        mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
        # A subdirectory of the volume: initdb refuses a directory holding lost+found.
        assert env["PGDATA"] == mounts["data"] + "/pgdata"
        assert mounts["data"] == "/var/lib/postgresql/data"

    def test_password_from_the_secret(self, server):
        (password,) = [e for e in server["env"] if e["name"] == "POSTGRES_PASSWORD"]
        assert password["valueFrom"]["secretKeyRef"] == {
            "name": "fm-postgresql",
            "key": "airflow-password",
        }

    def test_port(self, server):
        assert server["ports"] == [{"name": "postgresql", "containerPort": 5432, "protocol": "TCP"}]

    def test_probes_ask_pg_isready_without_a_password(self, server):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert server[probe]["exec"]["command"] == PG_READY
        startup = server["startupProbe"]
        # The first start runs initdb: at least five minutes before the kubelet gives up.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


class TestSecurity:
    def test_runs_as_the_images_postgres_user(self, statefulset):
        pod = statefulset["spec"]["template"]["spec"]
        expected = {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999}
        assert expected.items() <= pod["securityContext"].items()
        assert pod["automountServiceAccountToken"] is False

    def test_read_only_root_and_no_privileges(self, server):
        assert server["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }

    def test_writable_paths_are_empty_dirs(self, statefulset, server):
        volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
        for path in ("/var/run/postgresql", "/tmp"):
            assert "emptyDir" in volumes[mounts[path]], path


class TestStorageAndServices:
    def test_data_on_a_pvc_of_the_configured_size(self):
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {"postgresql": {"persistence": {"size": "3Gi", "storageClass": "fast"}}},
            show_only=["charts/postgresql/templates/postgresql-statefulset.yaml"],
        )
        (claim,) = docs[0]["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data"
        assert claim["spec"]["resources"]["requests"]["storage"] == "3Gi"
        assert claim["spec"]["storageClassName"] == "fast"
        assert docs[0]["spec"]["replicas"] == 1

    def test_services(self, platform_docs, statefulset):
        service = find(platform_docs, "Service", "fm-postgresql")
        headless = find(platform_docs, "Service", "fm-postgresql-headless")
        pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
        for svc in (service, headless):
            assert svc["spec"]["selector"].items() <= pod_labels.items()
            assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
                (5432, "postgresql")
            ]
        assert service["spec"]["type"] == "ClusterIP"
        assert headless["spec"]["clusterIP"] == "None"
        assert statefulset["spec"]["serviceName"] == "fm-postgresql-headless"

    def test_resources_from_values(self, kind_docs, server):
        kind = container(find(kind_docs, "StatefulSet", "fm-postgresql"), "postgresql")
        expected = yaml.safe_load(KIND_VALUES.read_text())["postgresql"]["resources"]
        assert kind["resources"] == expected
        assert set(server["resources"]) == {"requests", "limits"}


class TestSecret:
    def test_generated_password(self, platform_docs):
        secret = find(platform_docs, "Secret", "fm-postgresql")
        assert set(secret["data"]) == {"airflow-password"}
        password = base64.b64decode(secret["data"]["airflow-password"]).decode()
        assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    def test_a_new_render_without_a_seed_draws_a_new_one(self, platform_docs):
        again = render_chart(
            WITHOUT_AIRFLOW, show_only=["charts/postgresql/templates/postgresql-secret.yaml"]
        )
        assert again[0]["data"] != find(platform_docs, "Secret", "fm-postgresql")["data"]

    def test_a_seed_makes_it_repeat(self):
        def render() -> dict[str, str]:
            docs = render_chart(
                WITHOUT_AIRFLOW | {"global": {"generatedSecretsSeed": SEED}},
                show_only=["charts/postgresql/templates/postgresql-secret.yaml"],
            )
            data: dict[str, str] = docs[0]["data"]
            return data

        assert render() == render()

    def test_existing_secret_replaces_the_generated_one(self):
        docs = render_chart(
            {
                "postgresql": {"auth": {"existingSecret": "corp-pg"}},
                "airflow": {"database": {"existingSecret": "corp-pg"}},
            }
        )
        assert ("Secret", "fm-postgresql") not in {(d["kind"], d["metadata"]["name"]) for d in docs}
        server = container(find(docs, "StatefulSet", "fm-postgresql"), "postgresql")
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in server["env"] if "valueFrom" in e}
        assert refs == {"corp-pg"}
        scheduler = container(find(docs, "Deployment", "fm-airflow-scheduler"), "scheduler")
        (password,) = [e for e in scheduler["env"] if e["name"] == "AIRFLOW_DB_PASSWORD"]
        assert password["valueFrom"]["secretKeyRef"]["name"] == "corp-pg"


class TestAirflowUsesIt:
    def test_every_control_plane_container_connects_here(self, full_docs):
        password = base64.b64decode(
            find(full_docs, "Secret", "fm-postgresql")["data"]["airflow-password"]
        ).decode()
        for name in CONTROL_PLANE:
            deployment = find(full_docs, "Deployment", name)
            spec = deployment["spec"]["template"]["spec"]
            for item in [*spec.get("initContainers", []), *spec["containers"]]:
                if not any(e["name"] == "AIRFLOW_DB_PASSWORD" for e in item.get("env", [])):
                    continue
                env = container_env(full_docs, item)
                assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
                    f"postgresql+psycopg2://airflow:{password}@fm-postgresql:5432/airflow"
                ), (name, item["name"])

    def test_migration_init_container_is_on_postgresql(self, full_docs):
        migrate = container(find(full_docs, "Deployment", "fm-airflow-scheduler"), "migrate-db")
        env = {e["name"]: e for e in migrate["env"]}
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["value"].startswith(
            "postgresql+psycopg2://"
        )
        assert "mysql" not in migrate["args"][-1]

    def test_task_pods_still_get_train_data_on_mysql(self, full_docs):
        (cm,) = [
            d
            for d in full_docs
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "fm-airflow-pod-template"
        ]
        pod = yaml.safe_load(cm["data"]["pod_template_file.yaml"])
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        assert "@fm-mysql:3306/train_data" in env["FOREST_DATABASE_URL"]["value"]
        assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env

    def test_own_server_instead(self):
        docs = render_chart(
            {
                "postgresql": {"enabled": False},
                "airflow": {"database": {"host": "pg.corp", "existingSecret": "corp-pg"}},
            }
        )
        assert not any(d["metadata"]["name"].startswith("fm-postgresql") for d in docs)
        scheduler = container(find(docs, "Deployment", "fm-airflow-scheduler"), "scheduler")
        (url,) = [e for e in scheduler["env"] if e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert "@pg.corp:5432/airflow" in url["value"]


def test_offline_values_use_the_debian_stand_in():
    docs = render_chart(
        WITHOUT_AIRFLOW,
        value_files=[KIND_VALUES, OFFLINE_VALUES],
        show_only=["charts/postgresql/templates/postgresql-statefulset.yaml"],
    )
    server = container(docs[0], "postgresql")
    assert server["image"] == "localhost:5001/forest-mlops-standin/postgres:15-bookworm"
