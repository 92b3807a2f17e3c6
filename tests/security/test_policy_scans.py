"""checkov over the whole platform in one scan, and hadolint over every image.

The per-part scans stay with their owners (tests/charts/test_policy_tools.py: the umbrella
chart without Airflow; tests/charts/airflow/test_airflow_manifests.py: Airflow and its task
pods; tests/platform/test_checkov.py: Dockerfiles and k8s/). This one scans what a kind install
applies, all together: the chart with values-kind.yaml and Airflow, the Airflow task pod and
k8s/. It prints the counts docs/RELIABILITY.md quotes (`pytest tests/security -s -k scans`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.security.conftest import KIND_VALUES, kustomize, worker_pod_of
from tests.support.helm import REPO_ROOT, render_chart, tool

pytestmark = pytest.mark.slow


def test_checkov_on_the_whole_kind_platform_fails_nothing_unexplained(tmp_path: Path) -> None:
    docs = render_chart({}, value_files=[KIND_VALUES])
    objects = [*docs, worker_pod_of(docs), *kustomize("k8s"), *kustomize("k8s/job")]
    manifest = tmp_path / "platform.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    proc = subprocess.run(
        [
            tool("checkov"), "--framework", "kubernetes", "-f", str(manifest),
            "--compact", "--skip-download", "--output", "json",
        ],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    print(
        f"checkov kubernetes, whole kind platform ({len(objects)} objects): "
        f"passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}"
    )
    assert failed == []
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 20, (check["check_id"], check["resource"], reason)


def test_hadolint_on_every_image_finds_nothing() -> None:
    dockerfiles = sorted(REPO_ROOT.glob("images/*/Dockerfile"))
    assert dockerfiles
    proc = subprocess.run(
        [tool("hadolint"), "--format", "json", "--no-fail", *map(str, dockerfiles)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(proc.stdout or "[]")
    levels = sorted({f["level"] for f in findings})
    print(f"hadolint, {len(dockerfiles)} Dockerfiles: {len(findings)} findings {levels}")
    assert [f for f in findings if f["level"] in ("error", "warning")] == []
