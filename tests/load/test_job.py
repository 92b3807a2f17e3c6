"""The load Job's manifest (forest_mlops.load.job.load_job): valid for the API server, clean
under checkov, locked down like the chart's pods, and bounded in time. Its admission by the
chart's NetworkPolicies: tests/charts/test_network_flows.py::TestLoadJob."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from forest_mlops.load import job
from tests.charts.conftest import KIND_VALUES
from tests.support.helm import render_chart
from tests.support.processes import VENV_BIN
from tests.support.scans import assert_clean, checkov

IMAGE = "localhost:5001/forest-mlops/load:2d0c37f31822"


def manifest(rate: float = 20, duration_s: int = 60, **kwargs: Any) -> dict[str, Any]:
    return job.load_job(
        name="forest-mlops-load-0123abcd", namespace="forest-mlops", release="forest-mlops",
        image=IMAGE, rate=rate, duration_s=duration_s, **kwargs,
    )  # fmt: skip


def pod(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


def container(body: dict[str, Any]) -> dict[str, Any]:
    (found,) = pod(body)["containers"]
    return dict(found)


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.parametrize("kube_version", ["1.33.0", "1.35.0"])
def test_the_job_validates_strictly(kube_version: str, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest()))
    proc = subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "-k", kube_version, str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == 1


@pytest.mark.slow
def test_checkov_fails_nothing_unexplained(tmp_path: Path) -> None:
    """With the chart's NetworkPolicies (kind values), which select the Job's pod."""
    policies = [
        d
        for d in render_chart(value_files=[KIND_VALUES], release="forest-mlops",
                              namespace="forest-mlops")
        if d["kind"] == "NetworkPolicy"
    ]  # fmt: skip
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump_all([manifest(), *policies]))
    report = checkov("--framework", "kubernetes", "-f", str(path))["kubernetes"]
    assert_clean(report, min_resources=1, min_passed=20)


def test_the_pod_runs_locked_down() -> None:
    body = manifest()
    spec, locust = pod(body), container(body)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's user
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert locust["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert set(locust["resources"]) == {"requests", "limits"}
    assert locust["image"] == IMAGE


def test_the_job_is_one_bounded_attempt() -> None:
    body = manifest(duration_s=90)
    assert body["spec"]["backoffLimit"] == 0
    assert body["spec"]["activeDeadlineSeconds"] > 90
    assert pod(body)["restartPolicy"] == "Never"


def test_the_client_label_is_on_the_pod_only() -> None:
    """The label R-inference-clients-egress selects; on the pod, where policies look."""
    body = manifest()
    assert body["spec"]["template"]["metadata"]["labels"][job.CLIENT_LABEL] == "true"
    assert job.CLIENT_LABEL not in body["metadata"]["labels"]
    assert body["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == (
        "forest-mlops"
    )


@pytest.mark.parametrize(("rate", "users"), [(20, "20"), (2.5, "3"), (100, "100")])
def test_locust_gets_the_rate_and_the_users_that_hold_it(rate: float, users: str) -> None:
    args = container(manifest(rate=rate, duration_s=45))["args"]
    assert option(args, "--target-rate") == f"{rate:g}"
    assert option(args, "--users") == users == option(args, "--spawn-rate")
    assert option(args, "--run-time") == "45s"
    assert option(args, "--host") == "http://forest-mlops-inference:8001"
    assert option(args, "-f") == job.LOCUSTFILE
    assert option(args, "--exit-code-on-error") == "0"
    # Requests in flight at the end finish within the Job's deadline.
    stop = int(option(args, "--stop-timeout"))
    deadline = manifest(rate=rate, duration_s=45)["spec"]["activeDeadlineSeconds"]
    assert stop > 0 and 45 + stop < deadline


def test_any_lets_the_scheduler_place_locust() -> None:
    spec = pod(manifest(client_node="any"))
    assert "nodeSelector" not in spec and "tolerations" not in spec and "affinity" not in spec


def test_locust_runs_apart_from_the_workers_with_a_core_by_default() -> None:
    """kind's and kubeadm's control-plane role and its NoSchedule taint; required, so that a
    run never falls back to a busy worker under the same name."""
    spec = pod(manifest())
    assert spec["containers"][0]["resources"]["requests"]["cpu"] == "1"
    role = "node-role.kubernetes.io/control-plane"
    assert spec["nodeSelector"] == {role: ""}
    assert spec["tolerations"] == [{"key": role, "operator": "Exists", "effect": "NoSchedule"}]


def test_an_unknown_client_node_is_refused() -> None:
    with pytest.raises(ValueError, match=r"client_node must be one of .*'worker'"):
        manifest(client_node="worker")
