"""The chart's pods as containers of the images `make images` built (tests/images/pods.py).

Every container test runs against these session-wide pods on one Docker network, started on
first use: MySQL (the MariaDB stand-in), PostgreSQL (Airflow's metadata DB; Debian's
PostgreSQL 15 standing in for postgres:17), S3 (the moto stand-in), MLflow, api-data, inference,
the Airflow control plane and Prometheus (Debian's 2.42 standing in for the official 3.x).
Without a Docker engine the tests skip, listed at the end of the run, and fail under CI
(tests/support/missing; `make docker-engine` starts one, .ci/run runs it); with one, missing
images are an error (`make images` builds them; .ci/run does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.images.pods import (
    DOCKER,
    WORKDIRS,
    Pod,
    docker,
    engine_answers,
    image_exists,
    new_workdir,
)
from tests.support import missing
from tests.support.helm import find, render_chart

TAG = os.environ.get("FOREST_IMAGE_TAG", "dev")
PROJECT_IMAGES = {
    name: f"forest-mlops/{name}:{TAG}" for name in ("airflow", "mlflow", "api-data", "inference")
}
# The stand-ins scripts/images/standins.sh builds for the chart's mysql, postgresql, minio and
# prometheus (the server, its two exporters and Perses).
MYSQL_IMAGE = ("forest-mlops-standin/mariadb", "10.11-bookworm")
POSTGRES_IMAGE = ("forest-mlops-standin/postgres", "15-bookworm")
S3_IMAGE = ("forest-mlops-standin/s3", "moto-5.2.5")
PROMETHEUS_IMAGE = ("forest-mlops-standin/prometheus", "2.42-bookworm")
STATSD_EXPORTER_IMAGE = ("forest-mlops-standin/statsd-exporter", "0.29.0")
KUBE_STATE_METRICS_IMAGE = ("forest-mlops-standin/kube-state-metrics", "2.20.0")
PERSES_IMAGE = ("forest-mlops-standin/perses", "0.52.0")


def chart_values() -> dict[str, Any]:
    def image(name: str) -> dict[str, Any]:
        repository, tag = PROJECT_IMAGES[name].rsplit(":", 1)
        return {"image": {"repository": repository, "tag": tag}}

    return {
        "mysql": {"image": {"repository": MYSQL_IMAGE[0], "tag": MYSQL_IMAGE[1]}},
        "postgresql": {"image": {"repository": POSTGRES_IMAGE[0], "tag": POSTGRES_IMAGE[1]}},
        "minio": {
            "image": {"repository": S3_IMAGE[0], "tag": S3_IMAGE[1]},
            "bucketJob": {
                "client": "standin",
                "image": {"repository": S3_IMAGE[0], "tag": S3_IMAGE[1]},
            },
        },
        "prometheus": {
            "image": {"repository": PROMETHEUS_IMAGE[0], "tag": PROMETHEUS_IMAGE[1]},
            "statsdExporter": {
                "image": {"repository": STATSD_EXPORTER_IMAGE[0], "tag": STATSD_EXPORTER_IMAGE[1]}
            },
            "kubeStateMetrics": {
                "image": {
                    "repository": KUBE_STATE_METRICS_IMAGE[0],
                    "tag": KUBE_STATE_METRICS_IMAGE[1],
                }
            },
            "perses": {"image": {"repository": PERSES_IMAGE[0], "tag": PERSES_IMAGE[1]}},
        },
        "mlflow": image("mlflow"),
        "api-data": image("api-data"),
        "inference": image("inference"),
        "airflow": image("airflow"),
    }


@pytest.fixture(scope="session")
def engine() -> str:
    # Under CI (.ci/run runs `make docker-engine` first) no engine is a broken machine: fail.
    if not engine_answers():
        missing.absent("a Docker engine that answers", hint="make docker-engine starts one")
    return DOCKER


def need_images(*names: str) -> None:
    missing = [name for name in names if not image_exists(name)]
    if missing:
        pytest.fail(f"images missing: {missing}: run `make images` first")


@pytest.fixture(scope="session")
def docs() -> list[dict[str, Any]]:
    return render_chart(chart_values())


@pytest.fixture(scope="session")
def network(engine: str) -> Iterator[str]:
    name = f"fmtest-{uuid.uuid4().hex[:8]}"
    docker("network", "create", name)
    yield name
    proc = docker("ps", "-aq", "--filter", f"network={name}", check=False)
    ids = proc.stdout.split()
    if ids:
        docker("rm", "--force", *ids, check=False)
    docker("network", "rm", name, check=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Session fixtures (the pods, the network) are torn down by now: nothing writes here any more.
    # Left behind, each session's MariaDB and PostgreSQL files filled this machine's disk.
    for path in WORKDIRS:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_workdir("forest-mlops-pods-")


def start(
    docs: list[dict[str, Any]], network: str, workdir: Path, kind: str, name: str, **kw: Any
) -> Pod:
    pod = Pod(docs, find(docs, kind, name), network, name, workdir / name, **kw)
    need_images(
        *{c["image"] for c in [*pod.spec.get("initContainers", []), *pod.spec["containers"]]}
    )
    return pod.start()


def start_database(docs: list[dict[str, Any]], network: str, workdir: Path, name: str) -> Pod:
    """A database StatefulSet's pod, Ready: its startup probe covers the first initialisation."""
    pod = start(docs, network, workdir, "StatefulSet", name)
    pod.wait_ready(timeout=300, kind="startupProbe")
    pod.wait_ready(timeout=60)
    return pod


@pytest.fixture(scope="session")
def mysql(docs: list[dict[str, Any]], network: str, workdir: Path) -> Pod:
    return start_database(docs, network, workdir, "fm-mysql")


@pytest.fixture(scope="session")
def postgresql(docs: list[dict[str, Any]], network: str, workdir: Path) -> Pod:
    return start_database(docs, network, workdir, "fm-postgresql")


@pytest.fixture(scope="session")
def s3(docs: list[dict[str, Any]], network: str, workdir: Path) -> Pod:
    pod = start(docs, network, workdir, "StatefulSet", "fm-minio")
    pod.wait_ready(timeout=120)
    # The chart's bucket Job as rendered (client standin: MinIO's mc image cannot be had here)
    # makes the buckets and the per-client users, so MLflow and Airflow run with their own keys.
    job = Pod(docs, find(docs, "Job", "fm-minio-buckets-1"), network, "fm-minio-buckets",
              workdir / "fm-minio-buckets")  # fmt: skip
    proc = docker(*job.run_args(job.container(), detach=False), check=False, timeout=600)
    assert proc.returncode == 0, f"bucket Job:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return pod


def minio_credentials(docs: list[dict[str, Any]]) -> dict[str, str]:
    import base64

    data = find(docs, "Secret", "fm-minio")["data"]
    return {
        "U": base64.b64decode(data["root-user"]).decode(),
        "P": base64.b64decode(data["root-password"]).decode(),
    }


def run_client(
    network: str, image: str, script: str, env: dict[str, str] | None = None, timeout: float = 600
) -> str:
    """A throw-away client pod on the network: `python -c script` in that image; its stdout."""
    args = ["run", "--rm", "--network", network, "--entrypoint", "python"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    proc = subprocess.run(
        [DOCKER, *args, image, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"client exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc.stdout


@pytest.fixture(scope="session")
def mlflow(docs: list[dict[str, Any]], network: str, workdir: Path, mysql: Pod, s3: Pod) -> Pod:
    pod = start(docs, network, workdir, "Deployment", "fm-mlflow")
    pod.wait_ready(timeout=300)
    return pod


@pytest.fixture(scope="session")
def api_data(docs: list[dict[str, Any]], network: str, workdir: Path) -> Pod:
    pod = start(docs, network, workdir, "Deployment", "fm-api-data")
    pod.wait_ready(timeout=180)
    return pod


@pytest.fixture(scope="session")
def inference(docs: list[dict[str, Any]], network: str, workdir: Path, mlflow: Pod) -> Pod:
    return start(docs, network, workdir, "Deployment", "fm-inference")


@pytest.fixture(scope="session")
def airflow_scheduler(
    docs: list[dict[str, Any]], network: str, workdir: Path, postgresql: Pod, s3: Pod
) -> Pod:
    # Its init container runs `airflow db migrate`: the metadata DB is ready once it is started.
    pod = start(docs, network, workdir, "Deployment", "fm-airflow-scheduler")
    return pod


@pytest.fixture(scope="session")
def airflow_api_server(
    docs: list[dict[str, Any]], network: str, workdir: Path, airflow_scheduler: Pod
) -> Pod:
    pod = start(docs, network, workdir, "Deployment", "fm-airflow-api-server")
    pod.wait_ready(timeout=300)
    return pod


@pytest.fixture(scope="session")
def airflow_dag_processor(
    docs: list[dict[str, Any]], network: str, workdir: Path, airflow_scheduler: Pod
) -> Pod:
    return start(docs, network, workdir, "Deployment", "fm-airflow-dag-processor")
