"""`forest-mlops retrain`: the Job it builds from the CronJob, and the API calls it makes.

The Job construction is a pure function, tested on the real `kubectl kustomize k8s/` output.
The API calls are tested against `KubeStandIn` (tests/platform/kube_standin.py), a small local
HTTP server standing in for the Kubernetes API server, which cannot run on this machine: the
CLI runs as a real process with a kubeconfig pointing at it.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from forest_mlops.retrain import (
    INSTANTIATE_ANNOTATION,
    RetrainError,
    job_from_cronjob,
    job_result,
    manual_job_name,
)
from tests.platform.kube_standin import LOG_LINES, KubeStandIn
from tests.support.processes import VENV_BIN

CRONJOB_UID = "6f1c0b7e-3d1a-4f7e-9a51-0c6d2f1e9b10"


@pytest.fixture
def served_cronjob(retrain_cronjob: dict[str, Any]) -> dict[str, Any]:
    """The CronJob as the API server would return it (with a uid)."""
    cronjob = copy.deepcopy(retrain_cronjob)
    cronjob["metadata"]["uid"] = CRONJOB_UID
    return cronjob


class TestJobFromCronJob:
    def test_copies_the_job_template_like_kubectl_create_job_from(
        self, served_cronjob: dict[str, Any]
    ) -> None:
        before = copy.deepcopy(served_cronjob)
        job = job_from_cronjob(served_cronjob, "forest-mlops-retrain-manual-0a1b2c3d")

        template = served_cronjob["spec"]["jobTemplate"]
        assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
        assert job["spec"] == template["spec"]
        assert job["metadata"]["name"] == "forest-mlops-retrain-manual-0a1b2c3d"
        assert job["metadata"]["namespace"] == "forest-mlops"
        assert job["metadata"]["labels"] == template["metadata"]["labels"]
        assert job["metadata"]["annotations"][INSTANTIATE_ANNOTATION] == "manual"
        assert job["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "forest-mlops-retrain",
                "uid": CRONJOB_UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        # A deep copy: changing the Job never changes the CronJob read from the cluster.
        job["spec"]["template"]["spec"]["containers"][0]["args"].append("--profile")
        assert served_cronjob == before

    def test_refuses_a_cronjob_not_read_from_the_api_server(
        self, retrain_cronjob: dict[str, Any]
    ) -> None:
        with pytest.raises(RetrainError, match="uid"):
            job_from_cronjob(retrain_cronjob, "x")

    def test_refuses_a_cronjob_without_job_template(self, served_cronjob: dict[str, Any]) -> None:
        del served_cronjob["spec"]["jobTemplate"]
        with pytest.raises(RetrainError, match=r"spec\.jobTemplate\.spec"):
            job_from_cronjob(served_cronjob, "x")


@pytest.mark.parametrize(
    "cronjob_name",
    [
        "forest-mlops-retrain",
        "a-very-long-release-name-that-someone-chose-for-this-platform-retrain",
    ],
)
def test_manual_job_names_are_unique_valid_and_fit_the_label_limit(cronjob_name: str) -> None:
    names = {manual_job_name(cronjob_name) for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert len(name) <= 63
        assert name[0].isalnum() and name[-1].isalnum() and name == name.lower()
        assert "--" not in name


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], None),
        ([{"type": "Complete", "status": "False"}], None),
        ([{"type": "SuccessCriteriaMet", "status": "True"}], None),
        ([{"type": "Complete", "status": "True"}], (True, "Complete")),
        (
            [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}],
            (False, "DeadlineExceeded"),
        ),
    ],
)
def test_job_result_reads_the_terminal_condition(
    conditions: list[dict[str, str]], expected: tuple[bool, str] | None
) -> None:
    result = job_result({"metadata": {"name": "j"}, "status": {"conditions": conditions}})
    assert (None if result is None else (result.succeeded, result.reason)) == expected


def run_retrain(
    standin: KubeStandIn, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(standin.kubeconfig()))
    return subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "retrain", "--poll-interval", "0.05", *args],
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestRetrainCommand:
    def test_follow_streams_the_logs_and_exits_0_when_the_job_completes(
        self, served_cronjob: dict[str, Any], tmp_path: Path
    ) -> None:
        with KubeStandIn([served_cronjob]) as standin:
            proc = run_retrain(standin, tmp_path, "--follow")
        assert proc.returncode == 0, proc.stderr
        (created,) = standin.created_jobs
        name = created["metadata"]["name"]
        assert name.startswith("forest-mlops-retrain-manual-")
        expected = job_from_cronjob(served_cronjob, name)
        assert {k: v for k, v in created.items() if k != "metadata"} == {
            k: v for k, v in expected.items() if k != "metadata"
        }
        assert {**created["metadata"], "uid": None} == {**expected["metadata"], "uid": None}
        assert "".join(LOG_LINES) in proc.stdout
        assert f"job.batch/{name} succeeded: Complete" in proc.stdout
        # The pending pod's reason is reported with the registry hint.
        assert "ImagePullBackOff" in proc.stderr and "--default-repo=localhost:5001" in proc.stderr
        # The CronJob was found by its label in the default namespace, forest-mlops.
        assert standin.requests[0] == "GET /apis/batch/v1/namespaces/forest-mlops/cronjobs"

    def test_follow_exits_1_with_the_reason_when_the_job_fails(
        self, served_cronjob: dict[str, Any], tmp_path: Path
    ) -> None:
        with KubeStandIn([served_cronjob], outcome="BackoffLimitExceeded") as standin:
            proc = run_retrain(standin, tmp_path, "--follow")
        assert proc.returncode == 1
        assert "failed: BackoffLimitExceeded" in proc.stdout
        assert "".join(LOG_LINES) in proc.stdout

    def test_wait_without_follow_polls_the_job_status(
        self, served_cronjob: dict[str, Any], tmp_path: Path
    ) -> None:
        with KubeStandIn([served_cronjob]) as standin:
            standin.log_served = True  # nothing to stream: the Job is already done
            proc = run_retrain(standin, tmp_path, "--wait", "--cronjob", "forest-mlops-retrain")
        assert proc.returncode == 0, proc.stderr
        assert "succeeded: Complete" in proc.stdout
        assert "GET /apis/batch/v1/namespaces/forest-mlops/cronjobs/forest-mlops-retrain" in (
            standin.requests
        )
        assert not any("/log" in r for r in standin.requests)

    def test_without_wait_it_only_creates_the_job(
        self, served_cronjob: dict[str, Any], tmp_path: Path
    ) -> None:
        with KubeStandIn([served_cronjob]) as standin:
            proc = run_retrain(standin, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert len(standin.created_jobs) == 1
        assert [r for r in standin.requests if "/status" in r] == []

    def test_exits_2_with_a_clear_message_when_no_cronjob_is_there(
        self, served_cronjob: dict[str, Any], tmp_path: Path
    ) -> None:
        with KubeStandIn([served_cronjob]) as standin:
            proc = run_retrain(standin, tmp_path, "--namespace", "elsewhere")
        assert proc.returncode == 2
        assert "no retraining CronJob" in proc.stderr and "namespace elsewhere" in proc.stderr
        assert standin.created_jobs == []

    def test_exits_2_when_the_named_cronjob_does_not_exist(
        self, served_cronjob: dict[str, Any], tmp_path: Path
    ) -> None:
        with KubeStandIn([served_cronjob]) as standin:
            proc = run_retrain(standin, tmp_path, "--cronjob", "nope")
        assert proc.returncode == 2
        assert "no CronJob nope in namespace forest-mlops" in proc.stderr

    def test_exits_2_when_the_api_server_does_not_answer(self, tmp_path: Path) -> None:
        with KubeStandIn([]) as standin:
            config = standin.kubeconfig()
        (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
        proc = subprocess.run(
            [str(VENV_BIN / "forest-mlops"), "retrain"],
            env={"KUBECONFIG": str(tmp_path / "kubeconfig"), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2
        assert "the Kubernetes API refused or did not answer" in proc.stderr
