"""skaffold.yaml read by skaffold itself (v2.19.0, built by scripts/build-skaffold.sh), where the
build is cached on the machine (make e2e and .ci/run build it; ~20 minutes on 2 cores, so
`make test` does not). Without the binary these tests skip, listed at the end of the run, and
fail under CI (tests/support/missing). The JSON-schema tests (test_skaffold_kind.py) cannot
see skaffold's own checks: profile patches that do not apply, templates it cannot expand, the
Helm release it would run.
`skaffold diagnose` parses every profile; `skaffold render --offline` renders the offline
profile without a cluster and without building (image tags from the manifests)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.charts.test_strict_yaml import strict_load_all
from tests.support import missing
from tests.support.helm import REPO_ROOT, TOOLS_BIN

VERSION = "v2.19.0"
SKAFFOLD = (
    Path(os.environ.get("FOREST_CACHE", "/var/cache/forest-mlops"))
    / f"skaffold-{VERSION}"
    / "skaffold"
)
PROFILES = [
    None,
    *(p["name"] for p in yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())["profiles"]),
]


@pytest.fixture(autouse=True, scope="module")
def built_skaffold() -> None:
    missing.file(SKAFFOLD, hint="bash scripts/build-skaffold.sh builds it; .ci/run and make e2e do")


def skaffold(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{TOOLS_BIN}:{os.environ['PATH']}",
        "HOME": str(tmp),  # skaffold writes its global config there
        "FOREST_PYTHON_IMAGE": "python:3.11.14-slim-bookworm",
        "FOREST_AIRFLOW_IMAGE": "apache/airflow:3.3.2-python3.11",
        "FOREST_DATASET_IMAGE": "forest-mlops-dataset/covertype:test",
    }
    return subprocess.run([str(SKAFFOLD), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          env=env, timeout=300, check=False)  # fmt: skip


def test_the_binary_is_the_pinned_release(tmp_path: Path) -> None:
    assert skaffold("version", tmp=tmp_path).stdout.strip() == VERSION


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p or "default")
def test_diagnose_reads_every_profile(profile: str | None, tmp_path: Path) -> None:
    args = ["diagnose", "--yaml-only"] + (["--profile", profile] if profile else [])
    proc = skaffold(*args, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (config,) = strict_load_all(proc.stdout, f"skaffold diagnose {profile}")
    assert config["apiVersion"] == "skaffold/v4beta14"


def test_render_offline_profile_uses_the_stand_ins(tmp_path: Path) -> None:
    # The images "built" elsewhere (skaffold's --build-artifacts file): no build here.
    builds = tmp_path / "builds.json"
    names = ["airflow", "mlflow", "api-data", "inference"]
    builds.write_text(
        json.dumps(
            {
                "builds": [
                    {"imageName": f"forest-mlops/{n}", "tag": f"forest-mlops/{n}:e2e"}
                    for n in names
                ]
            }
        )
    )
    proc = skaffold("render", "--offline", "--profile", "offline", "--digest-source", "tag",
                    "--build-artifacts",
                    str(builds), tmp=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = strict_load_all(proc.stdout, "skaffold render -p offline")
    images = {
        c["image"]
        for d in docs
        if d.get("kind") in ("Deployment", "StatefulSet", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert "localhost:5001/forest-mlops-standin/mariadb:10.11-bookworm" in images
    assert "localhost:5001/forest-mlops-standin/s3:moto-5.2.5" in images
    assert {f"forest-mlops/{n}:e2e" for n in names} <= images | {
        c["image"]
        for d in docs
        if d.get("kind") == "CronJob"
        for c in d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    }
    assert any(d.get("kind") == "CronJob" for d in docs), "k8s/ was not rendered"
