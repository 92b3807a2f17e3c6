"""checkov over the whole platform in one scan, and hadolint over every image.

The per-part scans stay with their owners (tests/charts/test_policy_tools.py: the umbrella
chart without Airflow; tests/charts/airflow/test_airflow_manifests.py: Airflow and its task
pods; tests/platform/test_checkov.py: Dockerfiles and k8s/). This one scans what a kind install
applies, all together: the chart with values-kind.yaml and Airflow, the Airflow task pod and
k8s/. It prints the counts docs/RELIABILITY.md quotes (`pytest tests/security -s -k scans`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.security.conftest import KIND_VALUES, kustomize, worker_pod_of
from tests.support.helm import REPO_ROOT, render_chart
from tests.support.scans import assert_clean, checkov, hadolint

pytestmark = pytest.mark.slow


def test_checkov_on_the_whole_kind_platform_fails_nothing_unexplained(tmp_path: Path) -> None:
    docs = render_chart({}, value_files=[KIND_VALUES])
    objects = [*docs, worker_pod_of(docs), *kustomize("k8s"), *kustomize("k8s/job")]
    manifest = tmp_path / "platform.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    report = checkov("--framework", "kubernetes", "-f", str(manifest))["kubernetes"]
    print(f"checkov kubernetes, whole kind platform ({len(objects)} objects)")
    # checkov counts the objects it has checks for (workloads, RBAC, Services, ...); today
    # every one of the rendered objects, 1,068 checks passed.
    assert_clean(report, min_resources=len(objects), min_passed=1000)


def test_hadolint_on_every_image_finds_nothing(tmp_path: Path) -> None:
    dockerfiles = sorted(REPO_ROOT.glob("images/*/Dockerfile"))
    assert len(dockerfiles) >= 2, dockerfiles  # airflow and services at least
    findings = hadolint(dockerfiles, tmp_path)
    levels = sorted({f["level"] for f in findings})
    print(f"hadolint, {len(dockerfiles)} Dockerfiles: {len(findings)} findings {levels}")
    assert [f for f in findings if f["level"] in ("error", "warning")] == []
