"""Under CI nothing skips quietly (issue 21): without a Docker engine (tests/images), the built
skaffold (tests/platform/test_skaffold_binary.py) or the built statsd_exporter
(tests/observability/test_statsd_mapping.py) a test fails when CI=true, and elsewhere
skips and is listed at the end of the run, as tests/support/missing does for every input.

Each case runs one real test in a child pytest with the thing taken away: DOCKER_HOST at a socket
nobody listens on (the real engine keeps running), FOREST_CACHE at an empty directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helm import REPO_ROOT

CASES = {
    "no-engine": "tests/images/test_defects.py::test_the_dags_import_inside_the_airflow_image",
    "no-skaffold": "tests/platform/test_skaffold_binary.py::test_the_binary_is_the_pinned_release",
    "no-statsd-exporter": (
        "tests/observability/test_statsd_mapping.py::test_the_mapping_passes_the_exporters_own_check"
    ),
}


def reason(case: str, tmp_path: Path) -> str:
    """What the test says is missing, as tests/support/missing words it."""
    if case == "no-engine":
        return "a Docker engine that answers is missing (make docker-engine starts one)"
    if case == "no-statsd-exporter":
        exporter = tmp_path / "empty-cache" / "statsd_exporter-v0.29.0" / "statsd_exporter"
        return f"{exporter} is missing (bash scripts/build-statsd-exporter.sh builds it"
    skaffold = tmp_path / "empty-cache" / "skaffold-v2.19.0" / "skaffold"
    return f"{skaffold} is missing (bash scripts/build-skaffold.sh builds it"


def child_pytest(case: str, tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CI": "true" if ci else "false",
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        "FOREST_CACHE": str(tmp_path / "empty-cache"),
    }
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", CASES[case]]
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_under_ci_the_missing_thing_fails_the_test(case: str, tmp_path: Path) -> None:
    proc = child_pytest(case, tmp_path, ci=True)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "skipped" not in proc.stdout.splitlines()[-1]
    assert f"CI=true but {reason(case, tmp_path)}" in proc.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_elsewhere_it_skips_and_is_listed_at_the_end(case: str, tmp_path: Path) -> None:
    proc = child_pytest(case, tmp_path, ci=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 skipped" in proc.stdout.splitlines()[-1]
    assert f"SKIPPED: {reason(case, tmp_path)}" in proc.stdout
