"""`helm install --wait` can finish (issue 14, defect 3).

Helm creates hook resources only after the release's other resources are Ready (post-install),
and `--wait` (like skaffold's status check) waits for every Deployment and StatefulSet to be
Ready. The old chart made the buckets in a post-install hook while the inference Deployment was
Ready only with a champion, which training cannot store without a bucket: a deadlock. The
render must hold no hook that anything Ready-gated needs, and no readiness probe may wait for
something only a DAG run produces. The real `helm install --wait` runs in the e2e (tests/e2e).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.helm import CHART_DIR, REPO_ROOT, container, find, render_chart

KIND_VALUES = CHART_DIR / "values-kind.yaml"


@pytest.fixture(scope="module", params=["defaults", "kind"])
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    files = [KIND_VALUES] if request.param == "kind" else []
    return render_chart(value_files=files, release="fm", namespace="forest")


def test_no_resource_is_a_helm_hook(docs: list[dict[str, Any]]) -> None:
    hooks = [
        f"{d['kind']}/{d['metadata']['name']}"
        for d in docs
        if "helm.sh/hook" in (d["metadata"].get("annotations") or {})
    ]
    assert hooks == []


def test_buckets_are_made_by_a_job_created_with_the_release(docs: list[dict[str, Any]]) -> None:
    job = find(docs, "Job", "fm-minio-buckets-1")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_inference_readiness_does_not_wait_for_a_champion(docs: list[dict[str, Any]]) -> None:
    probe = container(find(docs, "Deployment", "fm-inference"), "inference")["readinessProbe"]
    assert probe["httpGet"]["path"] == "/ready?no_champion_ok=true"


def test_skaffold_waits_for_the_rollout() -> None:
    # With nothing left that can only turn Ready after a DAG run, skaffold's status check is on
    # (it was off to dodge the deadlock).
    config = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
    assert config["deploy"].get("statusCheck", True) is True
