"""Regression tests for the defects of issue 12 that only an image shows (the fourth, the
`# syntax=` line, is test_dockerfiles_offline.py). Each fails on the code before the fix:
  1. the wheel stage did not see mysql-init/ (not copied, and excluded by .dockerignore), which
     pyproject.toml force-includes: `uv build --wheel` failed, no image built;
  2. the api-server's write-admin-password init container ran through the image's entrypoint,
     which waits for `airflow db check` (20 tries) without any database settings: exit 1;
  3. both DAGs failed to import in the image: its apache-airflow-providers-mysql rejects the
     Asset URI mysql://train_data/forest_cover_data (the test venv has no such provider).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.images.conftest import PROJECT_IMAGES, need_images
from tests.images.pods import Pod, docker, image_exists, new_workdir
from tests.support.helm import REPO_ROOT, find

OFFICIAL_PYTHON = "python:3.11.14-slim-bookworm"
STANDIN_PYTHON = "forest-mlops-standin/python:3.11-bookworm"


def python_base() -> str:
    return OFFICIAL_PYTHON if image_exists(OFFICIAL_PYTHON) else STANDIN_PYTHON


@pytest.mark.parametrize(
    ("dockerfile", "stage", "service"),
    [
        ("images/airflow/Dockerfile", "wheel", None),
        ("images/mlflow/Dockerfile", "wheel", None),
        ("images/api-data/Dockerfile", "wheel", "api_data"),
        ("images/inference/Dockerfile", "wheel", "inference_api"),
    ],
)
def test_the_wheel_builds_from_the_build_context_and_carries_the_schema(
    engine: str, dockerfile: str, stage: str, service: str | None
) -> None:
    """Each wheel stage built from the repository root through .dockerignore, exactly as
    skaffold and `make images` build it (cached after `make images`: a few seconds): the shared
    package with the schema, and only its own service's package."""
    name = f"forest-mlops-test/{stage}:{Path(dockerfile).parent.name}"
    proc = docker(
        "build", "--network", "host", "-f", dockerfile, "--target", stage,
        "--build-arg", f"PYTHON_IMAGE={python_base()}", "-t", name, str(REPO_ROOT),
        check=False, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    listing = docker(
        "run", "--rm", "--entrypoint", "python", name, "-c",
        "import glob, json, zipfile; (w,) = glob.glob('/dist/*.whl');"
        " print(json.dumps(zipfile.ZipFile(w).namelist()))",
    ).stdout  # fmt: skip
    names = set(json.loads(listing))
    schema = {p.name for p in (REPO_ROOT / "mysql-init").iterdir() if p.is_file()}
    assert schema and {f"forest_mlops/mysql-init/{n}" for n in schema} <= names
    assert "forest_mlops/assets.py" in names
    packages = {n.split("/")[0] for n in names} & {"api_data", "inference_api"}
    assert packages == ({service} if service else set()), packages


DAGBAG = """
import importlib.metadata as m, json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag("/opt/airflow/dags")
print(json.dumps({
    "providers_mysql": m.version("apache-airflow-providers-mysql"),
    "dags": sorted(bag.dag_ids),
    "errors": {k: v[-2000:] for k, v in bag.import_errors.items()},
}))
"""


def test_the_dags_import_inside_the_airflow_image(engine: str) -> None:
    """The image's own Airflow and providers parse the baked DAGs: zero import errors. The
    image ships apache-airflow-providers-mysql (as the official one does): the provider that
    validates mysql:// Asset URIs is really there."""
    need_images(PROJECT_IMAGES["airflow"])
    out = docker(
        "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/opt/airflow/logs",
        "--env", "AIRFLOW__CORE__LOAD_EXAMPLES=False", "--entrypoint", "python",
        PROJECT_IMAGES["airflow"], "-c", DAGBAG, timeout=300,
    ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    assert result["providers_mysql"]
    assert result["errors"] == {}
    assert result["dags"] == ["forest_cover_data_extraction", "forest_cover_model_training"]


def test_the_api_server_admin_password_init_container_finishes_alone(
    engine: str, docs: list[dict[str, Any]]
) -> None:
    """write-admin-password as rendered (command, env, read-only root, uid, no capabilities),
    with no database anywhere: it must write the password file at once, not wait for one."""
    need_images(PROJECT_IMAGES["airflow"])
    deployment = find(docs, "Deployment", "fm-airflow-api-server")
    pod = Pod(docs, deployment, "none", "api-server-init", new_workdir("forest-mlops-init-"))
    (item,) = [c for c in pod.spec["initContainers"] if c["name"] == "write-admin-password"]
    started = time.monotonic()
    proc = docker(*pod.run_args(item, detach=False), check=False, timeout=180)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert elapsed < 30, f"took {elapsed:.0f} s: something waited"
    written = json.loads((pod.volume_dirs["auth"] / "passwords.json").read_text())
    secret = find(docs, "Secret", "fm-airflow")["data"]
    assert written == {"admin": base64.b64decode(secret["admin-password"]).decode()}
    assert not proc.stdout and "admin" not in proc.stderr  # never printed
