"""MLflow with authentication, as the chart runs it: a real `mlflow server --app-name basic-auth`
on MariaDB (auth tables in the tracking database) with artifacts in moto S3, its users made by
`forest-mlops mlflow-auth` beforehand (the chart's auth-users init container).

What the platform relies on: no login, no access (401) except /health, which the probes use;
the train user registers versions and moves the champion alias; the inference user loads the
champion but is refused (403) a new version or an alias move; re-running the user step keeps the
users and applies a changed password (the old one stays good while the server's credential
cache holds it); the request metrics are behind the login on the server
and served without it only by the chart's sidecar (`forest-mlops mlflow-metrics`), equal to the
server's own.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import MlflowServer, start_mlflow_server
from tests.support.exposition import samples
from tests.support.processes import VENV_BIN, ServerProcess, free_port

MODEL = "forest-cover-type"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


@dataclass
class AuthServer:
    server: MlflowServer
    passwords: dict[str, str]
    auth_env: dict[str, str]
    config: Path
    metrics_dir: Path


def run_auth_init(env: dict[str, str], config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "mlflow-auth", "--config-out", str(config)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def auth_server(
    make_mysql_database: Callable[[str], str],
    s3_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AuthServer]:
    backend = make_mysql_database("fmauth")
    passwords = {user: secrets.token_urlsafe(24) for user in ("admin", "train", "inference")}
    config = tmp_path_factory.mktemp("mlflow-auth") / "basic_auth.ini"
    auth_env = {
        "FOREST_MLFLOW_AUTH_DATABASE_URI": backend,
        "MLFLOW_AUTH_ADMIN_PASSWORD": passwords["admin"],
        "FOREST_MLFLOW_TRAIN_PASSWORD": passwords["train"],
        "FOREST_MLFLOW_INFERENCE_PASSWORD": passwords["inference"],
        "FOREST_MODEL_NAME": MODEL,
    }
    proc = run_auth_init(auth_env, config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics_dir = tmp_path_factory.mktemp("mlflow-metrics")
    server = start_mlflow_server(
        backend_url=backend,
        s3_endpoint=s3_server,
        bucket=f"mlflow-{uuid.uuid4().hex[:8]}",
        log_path=tmp_path_factory.mktemp("mlflow") / "mlflow.log",
        auth=True,
        metrics_dir=metrics_dir,
        extra_env={
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(24),
            # As in the chart: the server gets no admin password (the admin exists already).
            "MLFLOW_AUTH_ADMIN_PASSWORD": "",
        },
    )
    yield AuthServer(server, passwords, auth_env, config, metrics_dir)
    server.process.stop()


def status(url: str, login: tuple[str, str] | None = None) -> int:
    headers = {}
    if login is not None:
        headers["Authorization"] = "Basic " + b64encode(":".join(login).encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30):
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def login_as(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], None]]:
    """Log MLflow's client in as a user, as the pods do (MLFLOW_TRACKING_USERNAME/PASSWORD)."""
    import mlflow

    # Both, so that no registry URI of an earlier test applies; tests/conftest.py puts them
    # back after the test.
    mlflow.set_tracking_uri(auth_server.server.url)
    mlflow.set_registry_uri(auth_server.server.url)

    def login(user: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth_server.passwords[user])

    yield login


def test_config_file_is_private_and_holds_no_admin_password(auth_server: AuthServer) -> None:
    assert auth_server.config.stat().st_mode & 0o777 == 0o600
    text = auth_server.config.read_text()
    assert "default_permission = READ" in text
    assert auth_server.passwords["admin"] not in text
    # Checked logins are kept a minute: without it every request hashed its password (scrypt).
    assert "auth_cache_ttl_seconds = 60" in text


def test_a_negative_login_cache_stops_the_init_step(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "mlflow-auth", "--config-out", str(tmp_path / "a.ini"),
         "--login-cache-seconds", "-1"],
        env={**os.environ, **auth_server.auth_env},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--login-cache-seconds" in proc.stderr
    assert not (tmp_path / "a.ini").exists()


def test_health_is_open_and_everything_else_wants_a_login(auth_server: AuthServer) -> None:
    url = auth_server.server.url
    assert status(f"{url}/health") == 200  # the chart's probes
    assert status(f"{url}{SEARCH}") == 401
    assert status(f"{url}{SEARCH}", ("inference", "wrong-password-123")) == 401
    assert status(f"{url}{SEARCH}", ("inference", auth_server.passwords["inference"])) == 200


def test_inference_sees_no_model_yet_rather_than_a_refusal(
    auth_server: AuthServer, login_as: Callable[[str], None]
) -> None:
    """A fresh install: nothing is registered. The auth app answers inference's alias lookup
    with 403; inference must read that as "no champion yet" (Ready, /predict 503), not as an
    unreachable registry (never Ready: helm install --wait failed on it, make e2e)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from inference_api.model_holder import MlflowRegistry

    login_as("inference")
    name = f"not-registered-{uuid.uuid4().hex[:8]}"
    with pytest.raises(MlflowException, match="403"):
        MlflowClient(auth_server.server.url).get_model_version_by_alias(name, "champion")
    registry = MlflowRegistry(auth_server.server.url, timeout_seconds=10)
    assert registry.resolve(name, "champion") is None


def test_training_code_sees_no_champion_yet_rather_than_a_refusal(
    auth_server: AuthServer, login_as: Callable[[str], None]
) -> None:
    """The same 403 for the task pods' train user: the extraction DAG's champion_batch_accuracy
    (forest_mlops.monitoring.batch_accuracy) and training's decide read it as "no champion"."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from forest_mlops.training.registry import current_champion

    login_as("train")
    name = f"not-registered-{uuid.uuid4().hex[:8]}"
    client = MlflowClient(auth_server.server.url)
    # The refusal current_champion has to see through, as the server gives it to this user.
    with pytest.raises(MlflowException, match="403") as refused:
        client.get_model_version_by_alias(name, "champion")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert current_champion(client, name) is None


@pytest.fixture(scope="module")
def champion_version(auth_server: AuthServer) -> str:
    """The train user logs a run and a model, registers it and sets the champion alias. A tiny
    pyfunc stands in for the forest model: the registry's rules do not depend on the flavour."""
    script = f"""
import mlflow, mlflow.pyfunc
from mlflow import MlflowClient

class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [len(model_input)]

mlflow.set_experiment("forest-cover-type-training")
with mlflow.start_run():
    mlflow.log_metric("accuracy", 0.5)
    info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=["mlflow"])
version = mlflow.register_model(info.model_uri, {MODEL!r}).version
MlflowClient().set_registered_model_alias({MODEL!r}, "champion", version)
print("VERSION", version)
"""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": auth_server.server.url,
        # mlflow.set_registry_uri (training.tracking, earlier tests) exports MLFLOW_REGISTRY_URI:
        # inherited, it sent the registration to a server long gone, whose port moto had taken
        # (HTTP 500s, seen in a full make test).
        "MLFLOW_REGISTRY_URI": auth_server.server.url,
        "MLFLOW_TRACKING_USERNAME": "train",
        "MLFLOW_TRACKING_PASSWORD": auth_server.passwords["train"],
    }
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split("VERSION")[-1].strip()


def test_train_registers_and_promotes(
    champion_version: str, login_as: Callable[[str], None]
) -> None:
    from mlflow import MlflowClient

    login_as("train")
    assert MlflowClient().get_model_version_by_alias(MODEL, "champion").version == champion_version


def test_inference_loads_the_champion_but_cannot_write_the_registry(
    champion_version: str, login_as: Callable[[str], None]
) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    login_as("inference")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    assert model.predict([[1], [2], [3]]) == [3]
    client = MlflowClient()
    version = client.get_model_version_by_alias(MODEL, "champion")
    assert version.source is not None
    with pytest.raises(MlflowException, match="403"):
        client.create_model_version(MODEL, version.source, run_id=version.run_id)
    with pytest.raises(MlflowException, match="403"):
        client.set_registered_model_alias(MODEL, "champion", version.version)
    with pytest.raises(MlflowException, match="403"):
        client.delete_registered_model_alias(MODEL, "champion")
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion_version


def test_known_gap_any_login_may_create_models_of_its_own(
    champion_version: str, login_as: Callable[[str], None]
) -> None:
    """MLflow 3.17.2's auth app lets every login create registered models (their creator then
    manages them); only a DENY stops it, and a DENY also cost inference its reads (tried, see
    forest_mlops.mlflow_auth). Recorded so that a change in MLflow shows up here."""
    from mlflow import MlflowClient

    login_as("inference")
    MlflowClient().create_registered_model(f"scratch-{uuid.uuid4().hex[:6]}")


def test_rerun_keeps_users_and_applies_a_changed_password(
    auth_server: AuthServer, champion_version: str
) -> None:
    """The chart's init step runs at each pod start, before the server; here it runs beside a
    server that keeps going, so the old password stays good while the server holds it as a
    checked login (the credential cache, auth_cache_ttl_seconds: MLflow's documented window for
    changes made outside its API). The new one works at once; a wrong one never does."""
    url = f"{auth_server.server.url}{SEARCH}"
    old = auth_server.passwords["inference"]
    new = secrets.token_urlsafe(24)
    assert status(url, ("inference", old)) == 200  # checked now: cached
    proc = run_auth_init(
        {**auth_server.auth_env, "FOREST_MLFLOW_INFERENCE_PASSWORD": new}, auth_server.config
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    try:
        assert status(url, ("inference", new)) == 200
        assert status(url, ("inference", old)) == 200
        assert status(url, ("inference", secrets.token_urlsafe(24))) == 401
        assert status(url, ("train", auth_server.passwords["train"])) == 200
    finally:
        auth_server.passwords["inference"] = new


def test_missing_password_stops_the_init_step(auth_server: AuthServer, tmp_path: Path) -> None:
    env = {k: v for k, v in auth_server.auth_env.items() if k != "FOREST_MLFLOW_TRAIN_PASSWORD"}
    proc = subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "mlflow-auth", "--config-out", str(tmp_path / "a.ini")],
        env={k: v for k, v in os.environ.items() if k != "FOREST_MLFLOW_TRAIN_PASSWORD"} | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    assert "FOREST_MLFLOW_TRAIN_PASSWORD" in proc.stderr
    assert not (tmp_path / "a.ini").exists()


def test_request_metrics_need_a_login_and_the_sidecar_serves_the_same(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    url = auth_server.server.url
    admin = ("admin", auth_server.passwords["admin"])
    assert status(f"{url}/metrics") == 401  # what Prometheus would get without a login
    for _ in range(3):
        assert status(f"{url}{SEARCH}", admin) == 200
    port = free_port()
    sidecar = ServerProcess(
        [
            str(VENV_BIN / "forest-mlops"),
            "mlflow-metrics",
            "--directory",
            str(auth_server.metrics_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        log_path=tmp_path / "sidecar.log",
    )
    try:
        sidecar.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60)
        # Read the server's first: reading it is itself a counted request, the sidecar's is not.
        headers = {"Authorization": "Basic " + b64encode(":".join(admin).encode()).decode()}
        request = urllib.request.Request(f"{url}/metrics", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            own = answer.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            served = answer.read().decode()
    finally:
        sidecar.stop()
    from tests.observability.test_rules import MLFLOW_SERVER_METRICS

    # The names the dashboards read (and the doc's inventory lists) are the server's.
    assert {name for name in MLFLOW_SERVER_METRICS if not samples(served, name)} == set()
    counted = samples(served, "mlflow_http_request_total")
    assert counted.get("method=GET,status=200", 0) >= 3, served[:2000]
    assert counted.get("method=GET,status=401", 0) >= 1, served[:2000]
    # The same files: every count the server showed, the sidecar shows, plus at most the one
    # request that read the server's /metrics (counted after its answer was made).
    own_counts = samples(own, "mlflow_http_request_total")
    assert set(own_counts) <= set(counted)
    assert all(0 <= counted[k] - v <= 1 for k, v in own_counts.items()), (own_counts, counted)


def test_the_sidecar_refuses_a_missing_directory(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "mlflow-metrics", "--directory", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "--expose-prometheus" in proc.stderr
