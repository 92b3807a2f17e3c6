"""What Kubernetes and checkov say about the rendered manifests (Airflow's objects are checked
by tests/charts/airflow/). Both tools are slow per call: one invocation per version / scan."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.support.helm import REPO_ROOT, render_chart
from tests.support.scans import assert_clean, checkov

KUBERNETES_VALIDATE = REPO_ROOT / ".venv" / "bin" / "kubernetes-validate"


@pytest.mark.parametrize("version", ["1.33.0", "1.35.0"])
def test_every_object_is_valid_for_kubernetes(kind_manifest_file, tmp_path, version):
    # The kind render plus the optional objects (HPA, api-data Secret, fetch init container).
    extra = tmp_path / "options.yaml"
    options = render_chart(
        {
            "airflow": {"enabled": False},
            "api-data": {
                "dataset": {"fetch": {"enabled": True}},
                "restartToken": {"enabled": True},
            },
            "inference": {"autoscaling": {"enabled": True}},
        }
    )
    extra.write_text(yaml.safe_dump_all(options))
    proc = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "-k", version, str(kind_manifest_file), str(extra)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = re.findall(r"passed for resource (\S+)", proc.stdout + proc.stderr)
    assert len(passed) >= 2 * 26, proc.stdout + proc.stderr


@pytest.mark.slow
def test_checkov_finds_no_unjustified_failure(kind_manifest_file):
    report = checkov("--framework", "kubernetes", "-f", str(kind_manifest_file))["kubernetes"]
    objects = [d for d in yaml.safe_load_all(kind_manifest_file.read_text()) if d]
    assert_clean(report, min_resources=len(objects), min_passed=400)
