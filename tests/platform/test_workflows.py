"""GitHub workflows (.github/workflows/): actionlint-clean, and the e2e workflow pins the same
kind, Helm and skaffold versions this repository builds and tests with offline (issue 14)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.helm import REPO_ROOT, tool

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("actionlint"), "-no-color", *map(str, paths)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_there_is_an_e2e_workflow() -> None:
    assert REPO_ROOT / ".github" / "workflows" / "e2e.yml" in WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(workflow: Path) -> None:
    proc = actionlint(workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.nonexistent_context_key }}\n"
        "      - uses: actions/checkout\n"
    )
    assert actionlint(broken).returncode != 0


def test_e2e_pins_the_versions_used_here() -> None:
    env = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "e2e.yml").read_text())["env"]
    build = (REPO_ROOT / "scripts" / "build-skaffold.sh").read_text()
    assert f"VERSION=${{SKAFFOLD_VERSION:-{env['SKAFFOLD_VERSION']}}}" in build
    recipe = (REPO_ROOT / "scripts" / "cluster" / "recipe" / "versions.sh").read_text()
    assert re.search(rf"^KIND_VERSION={re.escape(env['KIND_VERSION'])}\b", recipe, re.M)
    assert re.search(rf"^K8S_VERSION={re.escape(env['KUBECTL_VERSION'])}\b", recipe, re.M)
    helm = subprocess.run([tool("helm"), "version", "--short"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert helm.startswith(env["HELM_VERSION"] + "+"), helm
