"""The mysql subchart: schema from mysql-init/, generated passwords, probes without a password
on a command line, MLflow-compatible server settings."""

from __future__ import annotations

import base64
import re

import pytest

from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import CHART_DIR, REPO_ROOT, container, container_env, find, render_chart

MYSQL_INIT = REPO_ROOT / "mysql-init"
PASSWORD_KEYS = {
    "root-password",
    "train-password",
    "mlflow-password",
    "inference-password",
}


@pytest.fixture(scope="module")
def statefulset(platform_docs):
    return find(platform_docs, "StatefulSet", "fm-mysql")


class TestInitdbConfigMap:
    def test_symlink_keeps_one_copy_of_the_schema(self):
        link = CHART_DIR / "charts" / "mysql" / "initdb"
        assert link.is_symlink()
        assert link.resolve() == MYSQL_INIT.resolve()

    def test_configmap_holds_exactly_the_mysql_init_files(self, platform_docs):
        data = find(platform_docs, "ConfigMap", "fm-mysql-initdb")["data"]
        files = {p.name: p.read_text() for p in MYSQL_INIT.iterdir() if p.suffix in {".sql", ".sh"}}
        assert files, "mysql-init/ holds no .sql or .sh file"
        assert data == files

    def test_mounted_where_the_image_runs_init_scripts(self, statefulset):
        mounts = {m["name"]: m for m in container(statefulset, "mysql")["volumeMounts"]}
        assert mounts["initdb"]["mountPath"] == "/docker-entrypoint-initdb.d"
        volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
        assert volumes["initdb"]["configMap"]["name"] == "fm-mysql-initdb"

    def test_every_variable_the_init_scripts_read_is_set(self, platform_docs, statefulset):
        scripts = "".join(p.read_text() for p in MYSQL_INIT.glob("*.sh"))
        required = set(re.findall(r"\b(?:MYSQL_DATABASE|[A-Z]+_DB_PASSWORD)\b", scripts))
        env = container_env(platform_docs, container(statefulset, "mysql"))
        assert required and required <= set(env)
        assert env["MYSQL_DATABASE"] == "train_data"


class TestServer:
    def test_official_image_pinned_to_84(self, statefulset):
        assert re.fullmatch(r"mysql:8\.4\.\d+", container(statefulset, "mysql")["image"])

    def test_config_lets_mlflow_create_triggers(self, platform_docs):
        cnf = find(platform_docs, "ConfigMap", "fm-mysql-config")["data"]["forest-mlops.cnf"]
        assert re.search(r"^log_bin_trust_function_creators = ON$", cnf, re.M)
        assert re.search(r"^datadir = /var/lib/mysql/data$", cnf, re.M)

    def test_root_only_over_the_local_socket(self, platform_docs, statefulset):
        env = container_env(platform_docs, container(statefulset, "mysql"))
        assert env["MYSQL_ROOT_HOST"] == "localhost"

    def test_data_on_a_pvc_of_the_configured_size(self):
        docs = render_chart(
            WITHOUT_AIRFLOW | {"mysql": {"persistence": {"size": "3Gi", "storageClass": "fast"}}},
            show_only=["charts/mysql/templates/mysql-statefulset.yaml"],
        )
        (claim,) = docs[0]["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"] == "3Gi"
        assert claim["spec"]["storageClassName"] == "fast"

    def test_probes_log_in_with_an_option_file(self, statefulset):
        main = container(statefulset, "mysql")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = main[probe]["exec"]["command"]
            assert command[1] == "--defaults-extra-file=/etc/mysql-probe/client.cnf"
            assert not any("password" in arg.lower() for arg in command)

    def test_option_file_written_from_the_environment(self, statefulset):
        init = container(statefulset, "probe-credentials")
        script = init["command"][-1]
        assert '"$MYSQL_ROOT_PASSWORD"' in script and "umask 077" in script
        assert init["env"][0]["valueFrom"]["secretKeyRef"] == {
            "name": "fm-mysql",
            "key": "root-password",
        }


class TestNoAirflowDatabase:
    def test_airflow_has_neither_user_nor_password_here(self, platform_docs, statefulset):
        # Airflow's metadata DB is the postgresql subchart (MariaDB, MySQL's offline stand-in,
        # is not supported by Airflow).
        env = container_env(platform_docs, container(statefulset, "mysql"))
        assert "AIRFLOW_DB_PASSWORD" not in env
        scripts = "".join(p.read_text() for p in MYSQL_INIT.iterdir())
        assert "AIRFLOW" not in scripts and "airflow_db" not in scripts


class TestSecret:
    def test_generated_passwords_are_random_and_distinct(self, platform_docs):
        data = find(platform_docs, "Secret", "fm-mysql")["data"]
        assert set(data) == PASSWORD_KEYS
        passwords = [base64.b64decode(v).decode() for v in data.values()]
        assert all(re.fullmatch(r"[A-Za-z0-9]{32}", p) for p in passwords)
        assert len(set(passwords)) == len(passwords)

    def test_a_new_render_generates_new_passwords(self, platform_docs):
        again = render_chart(
            WITHOUT_AIRFLOW, show_only=["charts/mysql/templates/mysql-secret.yaml"]
        )
        assert again[0]["data"] != find(platform_docs, "Secret", "fm-mysql")["data"]

    def test_kept_when_the_release_is_deleted(self, platform_docs):
        secret = find(platform_docs, "Secret", "fm-mysql")
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    def test_existing_secret_replaces_the_generated_one(self):
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {
                "mysql": {"auth": {"existingSecret": "corp-mysql"}},
                "mlflow": {"database": {"existingSecret": "corp-mysql"}},
                "inference": {"predictionLog": {"existingSecret": "corp-mysql"}},
            }
        )
        assert ("Secret", "fm-mysql") not in {(d["kind"], d["metadata"]["name"]) for d in docs}
        mysql = container(find(docs, "StatefulSet", "fm-mysql"), "mysql")
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in mysql["env"] if "valueFrom" in e}
        assert refs == {"corp-mysql"}
