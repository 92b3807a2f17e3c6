"""Config parity: the chart's MLflow, api-data and inference containers, run here as processes.

The chart is rendered with helm; each container's command, args and env are taken as rendered
(secretKeyRef/configMapKeyRef resolved from the rendered Secrets and ConfigMaps, $(VAR) expanded
the way the kubelet does) and run as local processes, init containers first. The only changes:

- service hostnames and ports -> local services: `R-mysql:3306` -> MariaDB 127.0.0.1:3306,
  `R-minio:9000` -> the moto S3 server, `R-mlflow:5000` -> the MLflow started from the chart's
  own command; a server's listen address 0.0.0.0 and port -> 127.0.0.1 and a free port;
- paths -> local ones: the baked dataset (/app/data/...) -> the dev CSV, the state PVC and
  HOME=/tmp -> a temporary directory;
- the first word resolved in .venv/bin (the images put the same console scripts on PATH).

Database, user and bucket names are chart values, set to throw-away ones so the test shares the
MariaDB and moto servers safely; the users and databases are created by mysql-init/'s own
script, as the MySQL container does. If a container's command or env is wrong in the chart,
the process fails here.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import MYSQL_ADMIN_URL, s3_client
from tests.support.exposition import samples
from tests.support.helm import REPO_ROOT, find, pod_containers, render_chart
from tests.support.processes import VENV_BIN, ServerProcess, free_port

pytestmark = pytest.mark.slow

RELEASE, NAMESPACE = "fm", "forest"
# As in the images: the project's console scripts first on PATH.
CHILD_PATH = f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
SAMPLE = {
    "Elevation": 2596,
    "Aspect": 51,
    "Slope": 3,
    "Horizontal_Distance_To_Hydrology": 258,
    "Vertical_Distance_To_Hydrology": 0,
    "Horizontal_Distance_To_Roadways": 510,
    "Hillshade_9am": 221,
    "Hillshade_Noon": 232,
    "Hillshade_3pm": 148,
    "Horizontal_Distance_To_Fire_Points": 6279,
    "Wilderness_Area": "Rawah",
    "Soil_Type": "C7745",
}


@dataclass
class Localizer:
    """Maps the cluster's hostnames, listen addresses/ports and paths to local ones.

    Every change is recorded as (kind, before, after) for the test that checks nothing else
    was touched.
    """

    hosts: dict[str, str]  # "R-mysql:3306" -> "127.0.0.1:3306"; bare "R-mysql" -> "127.0.0.1"
    paths: dict[str, str]
    changes: list[tuple[str, str, str]] = field(default_factory=list)

    def value(self, text: str, *, listen_port: int | None = None) -> str:
        kind, result = "", text
        if listen_port is not None:
            kind, result = "listen port", str(listen_port)
        elif text == "0.0.0.0":
            kind, result = "listen address", "127.0.0.1"
        elif text in self.paths:
            kind, result = "path", self.paths[text]
        elif text in self.hosts:
            kind, result = "host", self.hosts[text]
        else:
            for cluster, local in self.hosts.items():
                if ":" in cluster:  # host:port inside a URL
                    result = result.replace(f"@{cluster}/", f"@{local}/")
                    result = result.replace(f"//{cluster}", f"//{local}")
            kind = "host in URL"
        if result != text:
            self.changes.append((kind, text, result))
        return result


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: defined variables are replaced, others stay as written."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def container_env(
    container: dict[str, Any],
    docs: list[dict[str, Any]],
    localize: Localizer,
    listen_port: int | None = None,
) -> dict[str, str]:
    """The env as the kubelet builds it, Secret and ConfigMap references resolved."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        name = entry["name"]
        if "value" in entry:
            raw = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            raw = base64.b64decode(find(docs, "Secret", ref["name"])["data"][ref["key"]]).decode()
        else:
            ref = entry["valueFrom"]["configMapKeyRef"]
            raw = find(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
        port = listen_port if name in {"API_DATA_PORT", "INFERENCE_PORT"} else None
        env[name] = expand(localize.value(raw, listen_port=port), env)
    # The processes get exactly this env (ServerProcess(inherit_env=False)), so nothing in the
    # test process's environment can fill in a setting the chart forgot.
    return {**env, "PATH": CHILD_PATH}


def argv(
    container: dict[str, Any], env: dict[str, str], localize: Localizer, port: int
) -> list[str]:
    words = [*container.get("command", []), *container.get("args", [])]
    result = []
    for index, word in enumerate(words):
        listen = port if index > 0 and words[index - 1] == "--port" else None
        result.append(expand(localize.value(word, listen_port=listen), env))
    executable = VENV_BIN / result[0]
    assert executable.exists(), f"{result[0]} is not a console script of the project's venv"
    return [str(executable), *result[1:]]


@dataclass
class Started:
    urls: dict[str, str]
    processes: dict[str, ServerProcess]
    init_results: dict[str, int]
    docs: list[dict[str, Any]]
    names: dict[str, str]
    localize: Localizer


@pytest.fixture(scope="module")
def platform(
    make_train_database: Callable[[str], str],
    mysql_admin_engine: sa.Engine,
    s3_server: str,
    dev_csv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Started]:
    token = uuid.uuid4().hex[:8]
    train_url = make_train_database("fmparity")
    train_db = train_url.rsplit("/", 1)[1]
    names = {
        "mlflow_db": f"fmp_mlflow_{token}",
        "mlflow_user": f"fmp_mlf_{token}",
        "inference_user": f"fmp_inf_{token}",
        "train_user": f"fmp_trn_{token}",
        "train_db": train_db,
        "bucket": f"fmp-mlflow-{token}",
    }
    values = {
        "mlflow": {
            "database": {"name": names["mlflow_db"], "user": names["mlflow_user"]},
            "artifacts": {"bucket": names["bucket"]},
        },
        "inference": {
            "predictionLog": {"database": train_db, "user": names["inference_user"]},
        },
        "minio": {"buckets": [names["bucket"], "airflow-logs"]},
        "airflow": {"enabled": False},
    }
    docs = render_chart(values, release=RELEASE, namespace=NAMESPACE)
    workdir = tmp_path_factory.mktemp("parity")
    mlflow_port = free_port()
    moto = s3_server.removeprefix("http://")
    localize = Localizer(
        hosts={
            f"{RELEASE}-mysql:3306": "127.0.0.1:3306",
            f"{RELEASE}-mysql": "127.0.0.1",
            f"{RELEASE}-minio:9000": moto,
            f"{RELEASE}-mlflow:5000": f"127.0.0.1:{mlflow_port}",
        },
        paths={
            "/app/data/covertype.csv.gz": str(dev_csv),
            "/var/lib/api-data/state.json": str(workdir / "state.json"),
            "/tmp": str(workdir),
            # MLflow's --expose-prometheus directory, shared with its metrics sidecar.
            "/var/run/mlflow-metrics": str(workdir / "mlflow-metrics"),
        },
    )
    (workdir / "mlflow-metrics").mkdir()  # an emptyDir exists before the containers start

    # The MySQL side, as the mysql container's init does it (mysql-init/ with the rendered
    # Secret's passwords), with throw-away names.
    secret = find(docs, "Secret", f"{RELEASE}-mysql")["data"]
    password = {key: base64.b64decode(value).decode() for key, value in secret.items()}
    init_env = {
        **os.environ,
        "MYSQL_INIT_CLIENT": "mysql --protocol=tcp -h127.0.0.1 -P3306 -uroot",
        "MYSQL_DATABASE": train_db,
        "TRAIN_DB_PASSWORD": password["train-password"],
        "MLFLOW_DB_PASSWORD": password["mlflow-password"],
        "INFERENCE_DB_PASSWORD": password["inference-password"],
        "TRAIN_DB_USER": names["train_user"],
        "MLFLOW_DB_NAME": names["mlflow_db"],
        "MLFLOW_DB_USER": names["mlflow_user"],
        "INFERENCE_DB_USER": names["inference_user"],
    }
    initdb = find(docs, "ConfigMap", f"{RELEASE}-mysql-initdb")["data"]
    script = workdir / "02-databases-and-users.sh"
    script.write_text(initdb["02-databases-and-users.sh"])
    proc = subprocess.run(
        ["bash", str(script)], env=init_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    s3_client(s3_server).create_bucket(Bucket=names["bucket"])

    processes: dict[str, ServerProcess] = {}
    init_results: dict[str, int] = {}
    urls: dict[str, str] = {}
    try:
        # The services first: they start (dataset load, imports) while MLflow migrates.
        for component in ("api-data", "inference"):
            port = free_port()
            deployment = find(docs, "Deployment", f"{RELEASE}-{component}")
            assert not deployment["spec"]["template"]["spec"].get("initContainers")
            (container,) = pod_containers(deployment)
            env = container_env(container, docs, localize, port)
            processes[component] = ServerProcess(
                argv(container, env, localize, port),
                log_path=workdir / f"{component}.log",
                env=env,
                cwd=workdir,
                inherit_env=False,
            )
            urls[component] = f"http://127.0.0.1:{port}"
        # MLflow: its init containers (wait for the DB, db upgrade) in order, then the server
        # and its metrics sidecar.
        deployment = find(docs, "Deployment", f"{RELEASE}-mlflow")
        ports = {"mlflow": mlflow_port, "metrics": free_port()}
        for container in pod_containers(deployment):
            env = container_env(container, docs, localize)
            command = argv(container, env, localize, ports.get(container["name"], 0))
            if container in deployment["spec"]["template"]["spec"].get("initContainers", []):
                done = subprocess.run(
                    command,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=240,
                    check=False,
                )
                assert done.returncode == 0, f"{container['name']}: {done.stderr[-3000:]}"
                init_results[container["name"]] = done.returncode
            else:
                name = {"mlflow": "mlflow", "metrics": "mlflow-metrics"}[container["name"]]
                processes[name] = ServerProcess(
                    command,
                    log_path=workdir / f"{name}.log",
                    env=env,
                    cwd=workdir,
                    inherit_env=False,
                )
        urls["mlflow"] = f"http://127.0.0.1:{mlflow_port}"
        urls["mlflow-metrics"] = f"http://127.0.0.1:{ports['metrics']}"

        for component, url in urls.items():
            path = "/metrics" if component == "mlflow-metrics" else "/health"
            processes[component].wait_http(f"{url}{path}", timeout=180)
        yield Started(urls, processes, init_results, docs, names, localize)
    finally:
        for process in processes.values():
            process.stop()
        with mysql_admin_engine.begin() as conn:
            for user in ("train_user", "mlflow_user", "inference_user"):
                conn.execute(sa.text(f"DROP USER IF EXISTS '{names[user]}'@'%'"))
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{names['mlflow_db']}`"))


def test_only_hostnames_ports_and_paths_were_changed(platform: Started) -> None:
    localize = platform.localize
    kinds = {kind for kind, _, _ in localize.changes}
    assert kinds <= {"listen port", "listen address", "path", "host", "host in URL"}
    assert {"listen port", "path", "host", "host in URL"} <= kinds
    url_hosts = {local: cluster for cluster, local in localize.hosts.items() if ":" in cluster}
    for kind, before, after in localize.changes:
        if kind == "host in URL":
            restored = after
            for local, cluster in url_hosts.items():
                restored = restored.replace(f"@{local}/", f"@{cluster}/")
                restored = restored.replace(f"//{local}", f"//{cluster}")
            assert restored == before
        elif kind == "host":
            assert localize.hosts[before] == after
        elif kind == "path":
            assert localize.paths[before] == after
        else:
            assert before in {"0.0.0.0", "5000", "8000", "8001", "9102"}


def test_mlflow_init_containers_and_server_run_as_rendered(platform: Started) -> None:
    assert platform.init_results == {"wait-for-database": 0, "db-upgrade": 0, "auth-users": 0}
    url = platform.urls["mlflow"]
    assert httpx.get(f"{url}/health", timeout=10).text.strip() == "OK"
    # The backend store is the chart's database, reached with the rendered user and password.
    engine = sa.create_engine(f"{MYSQL_ADMIN_URL}/{platform.names['mlflow_db']}")
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert {"experiments", "registered_models", "model_versions"} <= tables


def test_mlflow_metrics_sidecar_serves_the_rendered_servers_counts(platform: Started) -> None:
    """The two containers as rendered share the --expose-prometheus directory: a request the
    server refused for want of a login shows in the sidecar's answer, which wants none."""
    search = f"{platform.urls['mlflow']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert httpx.get(search, timeout=10).status_code == 401
    metrics = httpx.get(f"{platform.urls['mlflow-metrics']}/metrics", timeout=10)
    assert metrics.status_code == 200
    counted = samples(metrics.text, "mlflow_http_request_total")
    assert counted.get("method=GET,status=401", 0) >= 1, metrics.text[:2000]


def test_api_data_serves_the_dataset_from_the_rendered_env(platform: Started) -> None:
    url = platform.urls["api-data"]
    ready = httpx.get(f"{url}/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["rows"] > 1000
    batch = httpx.get(f"{url}/data", params={"group_number": 1}, timeout=30)
    assert batch.status_code == 200, batch.text
    assert Path(platform.localize.paths["/var/lib/api-data/state.json"]).exists()


def test_inference_serves_the_champion_through_the_rendered_env(platform: Started) -> None:
    """Unready without a model; a champion registered on the chart's MLflow is loaded through
    the rendered tracking URI, POST /reload accepts the rendered token, and predictions are
    logged with the rendered inference user (INSERT-only, created by mysql-init)."""
    url = platform.urls["inference"]
    assert httpx.get(f"{url}/ready", timeout=10).status_code == 503
    model_name = find(platform.docs, "ConfigMap", f"{RELEASE}-platform")["data"][
        "FOREST_MODEL_NAME"
    ]
    dev_csv = platform.localize.paths["/app/data/covertype.csv.gz"]
    # In a child process: MLflow's fluent API keeps the tracking URI and experiment in globals
    # that other tests in this process must not inherit.
    registration = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-c",
            "import sys; from pathlib import Path; "
            "from tests.inference.models import read_rows, register, train_pipeline; "
            "model = train_pipeline(read_rows(Path(sys.argv[1]), 2000), seed=1, trees=5); "
            "print(register(sys.argv[2], sys.argv[3], model, alias='champion'))",
            dev_csv,
            platform.urls["mlflow"],
            model_name,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        # The chart's MLflow asks for a login: training's, from the rendered Secret.
        env={
            **os.environ,
            "MLFLOW_TRACKING_USERNAME": "train",
            "MLFLOW_TRACKING_PASSWORD": base64.b64decode(
                find(platform.docs, "Secret", f"{RELEASE}-mlflow-auth")["data"]["train-password"]
            ).decode(),
        },
    )
    assert registration.returncode == 0, registration.stderr[-3000:]

    secret = find(platform.docs, "Secret", f"{RELEASE}-inference")["data"]
    reload_token = base64.b64decode(secret["reload-token"]).decode()
    assert httpx.post(f"{url}/reload", timeout=60).status_code == 401
    reloaded = httpx.post(
        f"{url}/reload", headers={"Authorization": f"Bearer {reload_token}"}, timeout=120
    )
    assert reloaded.status_code == 200, reloaded.text
    assert httpx.get(f"{url}/ready", timeout=10).json()["ready"] is True

    answer = httpx.post(f"{url}/predict", json=SAMPLE, timeout=30)
    assert answer.status_code == 200, answer.text

    engine = sa.create_engine(f"{MYSQL_ADMIN_URL}/{platform.names['train_db']}")
    try:
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as conn:
                logged = conn.execute(sa.text("SELECT COUNT(*) FROM inference_log")).scalar_one()
            if logged or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    assert logged >= 1
