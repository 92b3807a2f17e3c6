"""checkov on what this part ships: the Dockerfiles of the four images and the kustomize builds
of k8s/.

One checkov run (about 10 s) scans both. Every failed check must be fixed or skipped in the
manifest with a written reason; a skip without a reason fails here too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.platform.dockerfiles import DOCKERFILES
from tests.support.helm import REPO_ROOT
from tests.support.scans import assert_clean, checkov

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
    return checkov("--directory", str(root), "--framework", "dockerfile", "kubernetes")


# Per framework, what the scan covers today less a margin: every Dockerfile (one resource each;
# 309 checks passed) and k8s/ (the retraining CronJob, Job, NetworkPolicy and ServiceAccount;
# 167 passed).
MINIMUM = {
    "dockerfile": {"min_resources": len(DOCKERFILES), "min_passed": 250},
    "kubernetes": {"min_resources": 4, "min_passed": 150},
}


@pytest.mark.parametrize("framework", ["dockerfile", "kubernetes"])
def test_no_failed_checks(framework: str, reports: dict[str, dict[str, Any]]) -> None:
    assert_clean(reports[framework], **MINIMUM[framework])
