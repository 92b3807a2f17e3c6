"""`make e2e` without a cluster: what can be checked before it runs (issue 14).

The e2e itself (tests/e2e, driven by scripts/e2e/run.sh) needs the kind cluster of `make
cluster`. Here: the README commands it runs exist and point at the chart's real Services and
ports; every object, label and Secret key it reads exists in the render skaffold installs; the
driver refuses clearly without a cluster; shellcheck is clean; the e2e is skipped in `make test`.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import readme_port_forwards
from tests.e2e.test_kind import EXAMPLE, UI_CHECKS
from tests.support import missing
from tests.support.helm import REPO_ROOT, find, render_chart

RUN = REPO_ROOT / "scripts" / "e2e" / "run.sh"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    chart = REPO_ROOT / "charts" / "forest-mlops"
    return render_chart(
        value_files=[chart / "values-kind.yaml", chart / "values-offline.yaml"],
        release="forest-mlops",
        namespace="forest-mlops",
    )


def test_the_readme_port_forwards_open_real_service_ports(docs: list[dict[str, Any]]) -> None:
    rows = readme_port_forwards()
    assert {name for name, _, _ in rows} == set(UI_CHECKS)
    for _, command, local in rows:
        words = command.split()
        assert words[:4] == ["kubectl", "-n", "forest-mlops", "port-forward"], command
        service = find(docs, "Service", words[4].removeprefix("svc/"))
        local_port, remote = (int(p) for p in words[5].split(":"))
        assert local == local_port
        assert remote in {p["port"] for p in service["spec"]["ports"]}, command


def test_what_the_e2e_reads_exists_in_the_render(docs: list[dict[str, Any]]) -> None:
    for name, port in [("airflow-api-server", 8080), ("mlflow", 5000), ("minio", 9000),
                       ("inference", 8001), ("mysql", 3306)]:  # fmt: skip
        service = find(docs, "Service", f"forest-mlops-{name}")
        assert port in {p["port"] for p in service["spec"]["ports"]}, name
    for secret, key in [("airflow", "admin-password"), ("mysql", "train-password"),
                        ("minio", "root-user"), ("minio", "root-password")]:  # fmt: skip
        assert key in find(docs, "Secret", f"forest-mlops-{secret}")["data"]
    scheduler = find(docs, "Deployment", "forest-mlops-airflow-scheduler")
    labels = scheduler["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "airflow"
    assert labels["app.kubernetes.io/instance"] == "forest-mlops"
    assert labels["app.kubernetes.io/component"] == "scheduler"
    assert set(EXAMPLE) == {
        "Elevation", "Aspect", "Slope", "Horizontal_Distance_To_Hydrology",
        "Vertical_Distance_To_Hydrology", "Horizontal_Distance_To_Roadways", "Hillshade_9am",
        "Hillshade_Noon", "Hillshade_3pm", "Horizontal_Distance_To_Fire_Points",
        "Wilderness_Area", "Soil_Type",
    }  # fmt: skip


def test_the_driver_refuses_without_a_cluster(tmp_path: Path) -> None:
    stub = tmp_path / "kubectl"
    stub.write_text("#!/bin/sh\necho 'connection refused' >&2\nexit 1\n")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "KIND": str(stub), "KUBECTL": str(stub)}
    proc = subprocess.run(["bash", str(RUN)], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "does not answer: make cluster" in proc.stderr


def test_make_test_skips_the_e2e() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FOREST_E2E"}
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "pytest"), "tests/e2e", "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and " skipped" in proc.stdout and "passed" not in proc.stdout


@pytest.mark.parametrize(
    "script",
    [
        "scripts/e2e/run.sh",
        "scripts/e2e/namespaces.sh",
        "scripts/e2e/prepare.sh",
        "scripts/e2e/dev-loop.sh",
        "scripts/build-skaffold.sh",
    ],
)
def test_shellcheck_finds_nothing(script: str) -> None:
    shellcheck = missing.tool("shellcheck", hint="apt-get install shellcheck")
    proc = subprocess.run([shellcheck, "-x", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout


def test_what_the_least_privilege_checks_read_exists_in_the_render(
    docs: list[dict[str, Any]],
) -> None:
    """tests/e2e's admission, network and root-key checks (issue 21): the Services and ports
    they connect to, the image and user their probes borrow from the data API, the pod template
    they read, and probes that meet `restricted` (else admission, not the check, would refuse
    them) while the privileged one does not."""
    from tests.e2e import probes
    from tests.security.test_pod_security import restricted_violations

    for name, port in {**probes.GUARDED, **probes.OPEN}.items():
        service = find(docs, "Service", f"forest-mlops-{name}")
        assert port in {p["port"] for p in service["spec"]["ports"]}, name
    api_data = find(docs, "Deployment", "forest-mlops-api-data")["spec"]["template"]["spec"]
    assert api_data["containers"][0]["name"] == "api-data"
    assert api_data["securityContext"]["runAsUser"] == 10001
    probe = probes.probe_pod("p", api_data["containers"][0]["image"], probes.stranger_labels())
    assert restricted_violations(probe["spec"]) == []
    assert restricted_violations(probes.privileged_pod("p", "img")["spec"])
    template = find(docs, "ConfigMap", "forest-mlops-airflow-pod-template")
    assert "pod_template_file.yaml" in template["data"]


def test_the_root_key_check_allows_only_the_object_store_and_its_job_on_the_render(
    docs: list[dict[str, Any]],
) -> None:
    """The e2e's root-key check on the render: the object store and its bucket Job hold the
    root keys and nothing else does (MLflow and every Airflow pod did before per-client users).
    A pod given the root keys (the old MLflow env) is found, so the check can fail."""
    import copy

    import yaml

    from tests.e2e import probes

    pods = [
        {"metadata": {"name": d["metadata"]["name"], "labels": d["spec"]["template"]["metadata"]
                      ["labels"]}, "spec": d["spec"]["template"]["spec"]}
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "Job")
    ]  # fmt: skip
    template = find(docs, "ConfigMap", "forest-mlops-airflow-pod-template")
    task = yaml.safe_load(template["data"]["pod_template_file.yaml"])
    task["metadata"]["name"] = "task pod"
    labels = {p["metadata"]["name"]: p["metadata"]["labels"] for p in [*pods, task]}
    holders = probes.root_key_holders([*pods, task], "forest-mlops-minio")
    allowed = {name for name in holders if probes.may_hold_root_keys(labels[name])}
    assert allowed == {"forest-mlops-minio", "forest-mlops-minio-buckets-1"}
    assert set(holders) - allowed == set()
    old_mlflow = copy.deepcopy(
        next(p for p in pods if p["metadata"]["name"] == "forest-mlops-mlflow")
    )
    for env in old_mlflow["spec"]["containers"][0]["env"]:
        ref = env.get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") == "forest-mlops-minio-mlflow":
            ref.update(
                name="forest-mlops-minio", key=ref["key"].replace("access-key-id", "root-user")
            )
    assert set(probes.root_key_holders([old_mlflow], "forest-mlops-minio")) == {
        "forest-mlops-mlflow"
    }
