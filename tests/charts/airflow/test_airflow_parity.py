"""Config parity: the api-server, scheduler and dag-processor run here with the configuration the
chart renders (airflow.cfg from the ConfigMap, env from the Deployments, secrets resolved as the
kubelet would), hostnames pointed at local services: the machine's PostgreSQL for the metadata
DB (the rendered `postgresql+psycopg2` URL, driver as rendered; only its host, port, user and
database name point at a throw-away database and owner, the password comes from the rendered
Secret's key), a moto S3 server for the remote logs. The init containers' own scripts (DB wait +
migrate, admin password file) run first, as in the pod.

One deliberate deviation, because nothing real can run here: the executor is LocalExecutor; the
KubernetesExecutor needs a Kubernetes API server (the pods it would create are built and checked
in test_airflow_manifests.py).
"""

from __future__ import annotations

import base64
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.charts.airflow.conftest import render_airflow
from tests.conftest import s3_client
from tests.support.helm import REPO_ROOT, find
from tests.support.processes import VENV_BIN, ServerProcess, free_port

pytestmark = pytest.mark.slow

DAGS = REPO_ROOT / "dags"
COMPONENTS = ["fm-airflow-api-server", "fm-airflow-scheduler", "fm-airflow-dag-processor"]


def resolve_env(
    container: dict[str, Any], secrets: dict[str, dict[str, str]], rewrite: Callable[[str], str]
) -> dict[str, str]:
    """The container's env as the kubelet builds it: secretKeyRefs read, $(VAR) expanded."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            value = secrets[ref["name"]][ref["key"]]
        else:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        env[item["name"]] = rewrite(value)
    return env


class Deployment:
    """What one of the chart's Deployments runs, made runnable on this machine."""

    def __init__(
        self,
        doc: dict[str, Any],
        base_env: dict[str, str],
        rewrite: Callable[[str], str],
        secrets: dict[str, dict[str, str]],
    ) -> None:
        spec = doc["spec"]["template"]["spec"]
        self.main = spec["containers"][0]
        self.init = spec.get("initContainers", [])
        self.env = {**base_env, **resolve_env(self.main, secrets, rewrite)}
        self.secrets = secrets
        self.rewrite = rewrite
        self.base_env = base_env

    def run_init_containers(self, cwd: Path) -> None:
        for container in self.init:
            argv = [
                self.rewrite(a) for a in container.get("command", []) + container.get("args", [])
            ]
            env = {**self.base_env, **resolve_env(container, self.secrets, self.rewrite)}
            proc = subprocess.run(
                argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
            )
            assert proc.returncode == 0, (
                container["name"],
                proc.stdout[-3000:],
                proc.stderr[-3000:],
            )

    def argv(self) -> list[str]:
        return [str(VENV_BIN / "airflow"), *self.main["args"][1:]]


@pytest.fixture(scope="module")
def local_airflow(
    make_postgres_database: Callable[..., str],
    s3_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    docs = render_airflow(kind=True)
    home = tmp_path_factory.mktemp("airflow-parity")
    (home / "auth").mkdir()
    (home / "logs").mkdir()
    # A fresh database owned by a fresh role, as the postgres image makes `airflow` for Airflow.
    db_user, db_password = f"af_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    db_url = make_postgres_database("fmairflow", owner=db_user, password=db_password)
    db = sa.make_url(db_url)
    s3_client(s3_server).create_bucket(Bucket="airflow-logs")
    api_port, health_port = free_port(), free_port()

    chart_secret = find(docs, "Secret", "fm-airflow")
    secrets = {
        "fm-airflow": {k: base64.b64decode(v).decode() for k, v in chart_secret["data"].items()},
        "fm-postgresql": {"airflow-password": db_password},
        "fm-mysql": {"train-password": "unused"},
        "fm-minio-airflow-logs": {"access-key-id": "testing", "secret-access-key": "testing"},
    }
    replacements = [
        ("postgresql+psycopg2://airflow:", f"postgresql+psycopg2://{db_user}:"),
        ("@fm-postgresql:5432/airflow", f"@{db.host}:{db.port}/{db.database}"),
        ("http://fm-minio:9000", s3_server),
        ("http://fm-airflow-api-server:8080", f"http://127.0.0.1:{api_port}"),
        # StatsD over UDP to the loopback: sent, and lost, as the pods' would be without a reader.
        ("statsd_host = fm-statsd-exporter", "statsd_host = 127.0.0.1"),
        ("/opt/airflow/dags", str(DAGS)),
        ("/opt/airflow", str(home)),
        ("/tmp/airflow", str(home / "tmp")),
    ]

    def rewrite(text: str) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        return text

    cfg = find(docs, "ConfigMap", "fm-airflow-config")["data"]["airflow.cfg"]
    (home / "airflow.cfg").write_text(rewrite(cfg))
    base_env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health_port),
    }
    deployments = {
        name: Deployment(find(docs, "Deployment", name), base_env, rewrite, secrets)
        for name in COMPONENTS
    }
    # The scheduler's init container migrates; the others wait for it, as in the cluster.
    deployments["fm-airflow-scheduler"].run_init_containers(home)
    with ThreadPoolExecutor() as pool:
        list(pool.map(lambda n: deployments[n].run_init_containers(home), COMPONENTS[::2]))

    processes = {
        name: ServerProcess(d.argv(), log_path=home / f"{name}.log", env=d.env, cwd=home)
        for name, d in deployments.items()
    }
    try:
        yield {
            "api": f"http://127.0.0.1:{api_port}",
            "health": f"http://127.0.0.1:{health_port}/health",
            "processes": processes,
            "deployments": deployments,
            "admin_password": secrets["fm-airflow"]["admin-password"],
            "home": home,
            "db_url": db_url,
        }
    finally:
        # The database and its role go at the end of the session (make_postgres_database).
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda p: p.stop(), processes.values()))


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, logs: list[ServerProcess]
) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        for process in logs:
            if process.proc.poll() is not None:
                pytest.fail(f"{process.argv[:2]} exited:\n{process.log_tail()}")
        time.sleep(1)
    pytest.fail(f"{what} not within {timeout} s:\n" + "\n".join(p.log_tail() for p in logs))


def test_components_come_up_healthy_and_parse_the_dags(local_airflow: dict[str, Any]) -> None:
    api = local_airflow["api"]
    processes = list(local_airflow["processes"].values())
    api_server = local_airflow["processes"]["fm-airflow-api-server"]
    api_server.wait_http(f"{api}/api/v2/version", timeout=180)

    def healthy() -> bool:
        body = httpx.get(f"{api}/api/v2/monitor/health", timeout=5).json()
        return bool(
            body["metadatabase"]["status"] == "healthy"
            and body["scheduler"]["status"] == "healthy"
            and body["dag_processor"]["status"] == "healthy"
        )

    wait_for(
        healthy, 180, "api-server health: metadatabase, scheduler and dag-processor", processes
    )
    wait_for(
        lambda: httpx.get(local_airflow["health"], timeout=5).status_code == 200,
        60,
        "scheduler /health",
        processes,
    )

    token = httpx.post(
        f"{api}/auth/token",
        json={"username": "admin", "password": local_airflow["admin_password"]},
        timeout=10,
    )
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    wrong = httpx.post(
        f"{api}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10
    )
    assert wrong.status_code == 401
    expected = {p.stem for p in DAGS.glob("forest_cover_*.py")}
    assert expected

    def parsed() -> bool:
        dags = httpx.get(f"{api}/api/v2/dags", headers=headers, timeout=10).json()["dags"]
        return expected <= {d["dag_id"] for d in dags}

    wait_for(parsed, 180, f"DAGs {sorted(expected)} in the REST API", processes)
    errors = httpx.get(f"{api}/api/v2/importErrors", headers=headers, timeout=10).json()
    assert errors["total_entries"] == 0, errors

    # And it is the PostgreSQL database the rendered URL led to that holds them.
    engine = sa.create_engine(local_airflow["db_url"])
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(sa.text("SELECT dag_id FROM dag")).scalars())
    finally:
        engine.dispose()
    assert expected <= stored


def test_dag_processor_probe_command_passes(local_airflow: dict[str, Any]) -> None:
    """The dag-processor's exec probe, run as the kubelet would (same env, same host)."""
    deployment = local_airflow["deployments"]["fm-airflow-dag-processor"]
    command = deployment.main["livenessProbe"]["exec"]["command"]
    proc = subprocess.run(
        [str(VENV_BIN / "airflow"), *command[1:]],
        env=deployment.env,
        cwd=local_airflow["home"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
