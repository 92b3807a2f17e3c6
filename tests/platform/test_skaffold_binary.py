"""skaffold.yaml read by skaffold itself (v2.19.0, built by scripts/build-skaffold.sh), where the
build is cached on the machine (make e2e and .ci/run build it; ~20 minutes on 2 cores, so
`make test` does not). Without the binary these tests skip, listed at the end of the run, and
fail under CI (tests/support/missing). The JSON-schema tests (test_skaffold_kind.py) cannot
see skaffold's own checks: profile patches that do not apply, templates it cannot expand, the
Helm release it would run.
`skaffold diagnose` parses every profile, and lists each artifact's inputs (what `skaffold dev`
watches and what the inputDigest tag is computed from); `skaffold render --offline` renders the
offline profile without a cluster and without building (image tags from the manifests)."""

from __future__ import annotations

import json
import os
import re
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


def skaffold(
    *args: str, tmp: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{TOOLS_BIN}:{os.environ['PATH']}",
        "HOME": str(tmp),  # skaffold writes its global config there
        "FOREST_PYTHON_IMAGE": "python:3.11.14-slim-bookworm",
        "FOREST_AIRFLOW_IMAGE": "apache/airflow:3.3.2-python3.11",
        "FOREST_DATASET_IMAGE": "forest-mlops-dataset/covertype:test",
        **(env or {}),
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


# The package every image installs (its wheel's sources and the lock it is installed from).
SHARED_INPUTS = {"pyproject.toml", "uv.lock", "images/requirements.py", "README.md", "src",
                 "mysql-init"}  # fmt: skip
ARTIFACT_INPUTS = {
    "forest-mlops/airflow": SHARED_INPUTS | {"dags"},
    "forest-mlops/mlflow": SHARED_INPUTS,
    "forest-mlops/api-data": SHARED_INPUTS | {"api-data/api_data"},
    "forest-mlops/inference": SHARED_INPUTS | {"inference/inference_api"},
}
HEADER = re.compile(r"^Docker artifact: (\S+)$", re.M)
# skaffold's debug line for each Dockerfile it reads: [{source destination isDir ...} ...]
LISTING = re.compile(r"Found dependencies for dockerfile: \[(.*?)\]\"")


def artifact_inputs(tmp: Path) -> dict[str, set[str]]:
    """The sources skaffold takes as each artifact's inputs, as `skaffold diagnose` lists them
    for one artifact after another (no skaffold command prints the list itself: its debug log
    does). The base images are `scratch`, which skaffold never looks up (for any other it reads
    the ONBUILD triggers from the engine or a registry), and the kubeconfig is empty: no engine,
    registry or cluster is asked."""
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    images = {f"FOREST_{n}_IMAGE": "scratch" for n in ("PYTHON", "AIRFLOW", "DATASET")}
    proc = subprocess.run(
        [str(SKAFFOLD), "diagnose", "--profile", "offline", "--enable-templating", "-v", "debug"],
        cwd=REPO_ROOT, env={**os.environ, "PATH": f"{TOOLS_BIN}:{os.environ['PATH']}",
                            "HOME": str(tmp), "KUBECONFIG": str(kubeconfig), **images},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    sections = HEADER.split(proc.stdout)[1:]
    found = {}
    for name, text in zip(sections[::2], sections[1::2], strict=True):
        listings = LISTING.findall(text)
        assert listings, f"skaffold listed no inputs of {name}"
        found[name] = {m for listing in listings for m in re.findall(r"\{(\S+) ", listing)}
    return found


def test_a_services_code_is_an_input_of_its_own_artifact_only(tmp_path: Path) -> None:
    """What `skaffold dev` watches per artifact: an edit of inference/ must be an input of
    forest-mlops/inference alone (sync, no rebuild of the others), api-data/ of
    forest-mlops/api-data alone. With the services as targets of one Dockerfile, skaffold
    listed both folders for all three (it reads every stage, whatever the target), and each
    edit rebuilt and rolled the other two (bench/results/dev-loop.json: 49 s per edit)."""
    assert artifact_inputs(tmp_path) == ARTIFACT_INPUTS
