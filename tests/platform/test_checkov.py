"""checkov on what this part ships: the Dockerfiles of the four images and the kustomize builds
of k8s/.

One checkov run (about 10 s) scans both. Every failed check must be fixed or skipped in the
manifest with a written reason; a skip without a reason fails here too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.platform.dockerfiles import DOCKERFILES
from tests.support.helm import REPO_ROOT, tool

pytestmark = pytest.mark.slow  # one checkov run: ~10 s idle, 30 s+ on a busy 2-core machine


@pytest.fixture(scope="module")
def reports(
    retrain_manifest: str, retrain_job_manifest: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("checkov")
    for path in DOCKERFILES:
        folder = root / Path(path).parent.name  # images/<folder>/Dockerfile
        folder.mkdir()
        shutil.copy(REPO_ROOT / path, folder / "Dockerfile")
    (root / "k8s").mkdir()
    # Scanned together: the Job is applied into the namespace where k8s/ put its NetworkPolicy.
    (root / "k8s" / "retrain.yaml").write_text(retrain_manifest + "---\n" + retrain_job_manifest)
    proc = subprocess.run(
        [
            tool("checkov"),
            "--directory", str(root),
            "--framework", "dockerfile", "kubernetes",
            "--output", "json", "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr
    parsed = json.loads(proc.stdout)
    return {
        report["check_type"]: report
        for report in (parsed if isinstance(parsed, list) else [parsed])
    }


@pytest.mark.parametrize("framework", ["dockerfile", "kubernetes"])
def test_no_failed_checks(framework: str, reports: dict[str, dict[str, Any]]) -> None:
    report = reports[framework]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["passed"] > 20


@pytest.mark.parametrize("framework", ["dockerfile", "kubernetes"])
def test_every_skip_is_justified(framework: str, reports: dict[str, dict[str, Any]]) -> None:
    for check in reports[framework]["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, (
            f"{check['check_id']} on {check['resource']} skipped without reason"
        )
