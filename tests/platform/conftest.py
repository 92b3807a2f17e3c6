"""Fixtures of the platform tests: the kustomize builds of k8s/ and the shared schemas."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import missing
from tests.support.helm import REPO_ROOT, tool

K8S_DIR = REPO_ROOT / "k8s"
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"


def kustomize_build(path: Path) -> str:
    proc = subprocess.run(
        [tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def retrain_manifest() -> str:
    """`kubectl kustomize k8s/`: what skaffold (or `kubectl apply -k k8s/`) applies."""
    return kustomize_build(K8S_DIR)


@pytest.fixture(scope="session")
def retrain_job_manifest() -> str:
    """`kubectl kustomize k8s/job`: the one-off Job."""
    return kustomize_build(K8S_DIR / "job")


@pytest.fixture(scope="session")
def retrain_objects(retrain_manifest: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(retrain_manifest) if doc]


@pytest.fixture(scope="session")
def retrain_cronjob(retrain_objects: list[dict[str, Any]]) -> dict[str, Any]:
    (cronjob,) = [doc for doc in retrain_objects if doc["kind"] == "CronJob"]
    return cronjob


def shared_schema(name: str) -> Path:
    """A schema of ../shared/schemas; CI has them, elsewhere a missing one skips (and is listed)."""
    return missing.file(SHARED_SCHEMAS / name, hint="the project's shared schemas")
