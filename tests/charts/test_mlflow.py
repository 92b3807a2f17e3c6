"""The mlflow subchart: the server command is forest_mlops.mlflow_server's, migrations run
before it starts, only the server holds S3 credentials."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys

import pytest
from mlflow.server.security_utils import is_allowed_host_header

from forest_mlops import mlflow_server
from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import container, container_env, find, render_chart

BACKEND_URI = "mysql+pymysql://mlflow:$(MLFLOW_DB_PASSWORD)@fm-mysql:3306/mlflow"


@pytest.fixture(scope="module")
def deployment(platform_docs):
    return find(platform_docs, "Deployment", "fm-mlflow")


def allowed_hosts(command: list[str]) -> list[str]:
    return command[command.index("--allowed-hosts") + 1].split(",")


class TestServerCommand:
    def test_command_is_server_command(self, deployment):
        command = container(deployment, "mlflow")["command"]
        assert command == mlflow_server.server_command(
            backend_store_uri=BACKEND_URI,
            artifacts_destination="s3://mlflow/",
            workers=1,
            allowed_hosts=allowed_hosts(command),
            auth=True,
            metrics_dir="/var/run/mlflow-metrics",
        )

    @pytest.mark.parametrize(
        "host",
        [
            "fm-mlflow:5000",
            "fm-mlflow",
            "fm-mlflow.forest:5000",
            "fm-mlflow.forest.svc:5000",
            "fm-mlflow.forest.svc.cluster.local:5000",
            "localhost:5000",
            "127.0.0.1:5000",
        ],
    )
    def test_clients_host_headers_are_accepted(self, deployment, host):
        hosts = allowed_hosts(container(deployment, "mlflow")["command"])
        assert is_allowed_host_header(hosts, host)

    @pytest.mark.parametrize("host", ["evil.example.org", "fm-mlflow.other:5000", "10.0.0.7:5000"])
    def test_other_host_headers_are_refused(self, deployment, host):
        hosts = allowed_hosts(container(deployment, "mlflow")["command"])
        assert not is_allowed_host_header(hosts, host)

    def test_env_is_server_env_plus_the_database_password(self, deployment, platform_docs):
        env = container_env(platform_docs, container(deployment, "mlflow"))
        minio = find(platform_docs, "Secret", "fm-minio")
        assert minio  # the keys below come from it
        expected = mlflow_server.server_env(
            s3_endpoint_url="http://fm-minio:9000",
            access_key_id=env["AWS_ACCESS_KEY_ID"],
            secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        assert expected.items() <= env.items()
        assert set(env) - set(expected) == {
            "MLFLOW_DB_PASSWORD",
            "HOME",
            "MLFLOW_AUTH_CONFIG_PATH",
            "MLFLOW_FLASK_SERVER_SECRET_KEY",
            "MLFLOW_DISABLE_TELEMETRY",
        }
        mysql = container_env(platform_docs, container(deployment, "db-upgrade"))
        assert env["MLFLOW_DB_PASSWORD"] == mysql["MLFLOW_DB_PASSWORD"]

    def test_secret_references(self, deployment):
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container(deployment, "mlflow")["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert refs == {
            "MLFLOW_DB_PASSWORD": {"name": "fm-mysql", "key": "mlflow-password"},
            # The object-store user of the MLflow bucket only (minio.users), not the root keys.
            "AWS_ACCESS_KEY_ID": {"name": "fm-minio-mlflow", "key": "access-key-id"},
            "AWS_SECRET_ACCESS_KEY": {"name": "fm-minio-mlflow", "key": "secret-access-key"},
            # Not the users' passwords: the server never needs them (auth-users applies them).
            "MLFLOW_FLASK_SERVER_SECRET_KEY": {"name": "fm-mlflow-auth", "key": "flask-secret-key"},
        }

    def test_external_database_and_s3(self):
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {
                "mlflow": {
                    "database": {"host": "db.corp", "existingSecret": "db", "passwordKey": "pw"},
                    "artifacts": {
                        "s3EndpointUrl": "https://s3.corp",
                        "bucket": "mlflow",
                        "existingSecret": "s3",
                    },
                }
            },
            show_only=["charts/mlflow/templates/mlflow-deployment.yaml"],
        )
        main = container(docs[0], "mlflow")
        uri = main["command"][main["command"].index("--backend-store-uri") + 1]
        assert uri == "mysql+pymysql://mlflow:$(MLFLOW_DB_PASSWORD)@db.corp:3306/mlflow"
        env = {e["name"]: e for e in main["env"]}
        assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "https://s3.corp"
        assert env["MLFLOW_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "pw"}


class TestMigration:
    def test_init_containers_wait_then_upgrade(self, deployment):
        init = [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]]
        assert init == ["wait-for-database", "db-upgrade", "auth-users"]
        assert container(deployment, "db-upgrade")["command"] == [
            "mlflow",
            "db",
            "upgrade",
            BACKEND_URI,
        ]
        assert container(deployment, "wait-for-database")["command"][-3:] == [
            "fm-mysql",
            "3306",
            "300",
        ]

    def test_can_be_switched_off(self):
        docs = render_chart(
            WITHOUT_AIRFLOW | {"mlflow": {"migration": {"enabled": False}}},
            show_only=["charts/mlflow/templates/mlflow-deployment.yaml"],
        )
        init = [c["name"] for c in docs[0]["spec"]["template"]["spec"]["initContainers"]]
        assert init == ["auth-users"]  # the users are needed whoever migrates the schema

    def test_wait_script_fails_clearly_on_a_closed_port(self, deployment):
        # The script itself, run here with a 1 s limit: it must give up with a message.
        script = container(deployment, "wait-for-database")["command"][2]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # bound, not listening: connections are refused
            proc = subprocess.run(
                [sys.executable, "-c", script, "127.0.0.1", str(port), "1"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        assert proc.returncode == 1
        assert f"database 127.0.0.1:{port} not reachable after 1 s" in proc.stderr

    def test_wait_script_returns_once_the_port_answers(self, deployment):
        script = container(deployment, "wait-for-database")["command"][2]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            proc = subprocess.run(
                [sys.executable, "-c", script, "127.0.0.1", str(port), "5"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        assert proc.returncode == 0, proc.stderr


class TestProbesAndService:
    def test_health_probes(self, deployment):
        main = container(deployment, "mlflow")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert main[probe]["httpGet"] == {"path": "/health", "port": "http"}
        assert main["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]

    def test_service_on_5000(self, platform_docs):
        (port,) = find(platform_docs, "Service", "fm-mlflow")["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (5000, "http")

    def test_may_reach_mysql_and_minio(self, deployment):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["forest-mlops/db-client"] == labels["forest-mlops/s3-client"] == "true"


class TestAuth:
    """MLflow's basic-auth app: a generated Secret, users made before the server starts, every
    client with its own login (forest_mlops.mlflow_auth)."""

    def test_the_secret_holds_four_generated_values(self, platform_docs):
        secret = find(platform_docs, "Secret", "fm-mlflow-auth")
        values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert set(values) == {
            "admin-password",
            "train-password",
            "inference-password",
            "flask-secret-key",
        }
        assert all(len(v) == 32 for v in values.values())
        assert len(set(values.values())) == 4

    def test_auth_users_writes_the_config_the_server_reads(self, deployment):
        init = container(deployment, "auth-users")
        assert init["command"][:3] == ["forest-mlops", "mlflow-auth", "--config-out"]
        config = init["command"][3]
        server_env = {e["name"]: e for e in container(deployment, "mlflow")["env"]}
        assert server_env["MLFLOW_AUTH_CONFIG_PATH"]["value"] == config
        # Both mount the pod's /tmp emptyDir, where the file (with the DB password) lives.
        for c in (init, container(deployment, "mlflow")):
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert config.startswith("/tmp/")

    def test_checked_logins_are_kept_a_minute_unless_set_otherwise(self, deployment):
        init = container(deployment, "auth-users")
        assert init["command"][4:] == ["--login-cache-seconds", "60"]
        docs = render_chart(WITHOUT_AIRFLOW | {"mlflow": {"auth": {"loginCacheSeconds": 0}}})
        (other,) = [
            d
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-mlflow")
        ]
        assert container(other, "auth-users")["command"][4:] == ["--login-cache-seconds", "0"]

    def test_auth_users_gets_every_login_and_the_auth_store(self, deployment):
        env = {e["name"]: e for e in container(deployment, "auth-users")["env"]}
        refs = {
            name: e["valueFrom"]["secretKeyRef"]
            for name, e in env.items()
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert refs == {
            "MLFLOW_DB_PASSWORD": {"name": "fm-mysql", "key": "mlflow-password"},
            "MLFLOW_AUTH_ADMIN_PASSWORD": {"name": "fm-mlflow-auth", "key": "admin-password"},
            "FOREST_MLFLOW_TRAIN_PASSWORD": {"name": "fm-mlflow-auth", "key": "train-password"},
            "FOREST_MLFLOW_INFERENCE_PASSWORD": {
                "name": "fm-mlflow-auth",
                "key": "inference-password",
            },
        }
        # The auth tables live in MLflow's own database (forest_mlops.mlflow_auth says why).
        assert env["FOREST_MLFLOW_AUTH_DATABASE_URI"]["value"] == BACKEND_URI
        assert env["FOREST_MODEL_NAME"]["valueFrom"]["configMapKeyRef"] == {
            "name": "fm-platform",
            "key": "FOREST_MODEL_NAME",
        }

    def test_probes_use_the_unauthenticated_health_route(self, deployment):
        main = container(deployment, "mlflow")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert main[probe]["httpGet"]["path"] == "/health"

    def test_inference_logs_in_as_inference(self, platform_docs):
        inference = find(platform_docs, "Deployment", "fm-inference")
        env = {e["name"]: e for e in container(inference, "inference")["env"]}
        assert env["MLFLOW_TRACKING_USERNAME"]["value"] == "inference"
        assert env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "fm-mlflow-auth",
            "key": "inference-password",
        }
