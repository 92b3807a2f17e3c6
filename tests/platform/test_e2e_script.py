"""scripts/e2e-kind.sh: its --dry-run step list, and the names it uses against the chart.

The script itself needs Docker, kind and skaffold, which this machine does not have; --dry-run
prints every step and command without running any (PATH is cut down here to prove it needs
none of those tools), and the test checks that list and that every object it waits for,
port-forwards or reads exists in the chart skaffold installs.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from forest_mlops.schema import record_from_mapping
from tests.support import missing
from tests.support.helm import REPO_ROOT, find, render_chart

SCRIPT = REPO_ROOT / "scripts" / "e2e-kind.sh"
STEPS = [
    "check the tools",
    "create the kind cluster forest-mlops",
    "build the images, load them into kind and deploy (skaffold run)",
    "wait for the rollouts",
    "port-forward Airflow, MLflow, inference and the data API",
    "log in to Airflow (admin password from Secret forest-mlops-airflow)",
    "unpause the DAGs and trigger forest_cover_data_extraction (Airflow REST API /api/v2)",
    "wait for a champion in the MLflow registry (forest-cover-type@champion)",
    "call the inference API",
    "retrain with a Kubernetes Job (forest-mlops retrain --wait --follow)",
    "end-to-end passed",
    "tear down",
]
KINDS = {"statefulset": "StatefulSet", "deployment": "Deployment", "job": "Job", "svc": "Service"}


@pytest.fixture(scope="module")
def dry_run() -> str:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"],
        env={"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def chart_docs() -> list[dict[str, Any]]:
    return render_chart(
        value_files=[REPO_ROOT / "charts" / "forest-mlops" / "values-kind.yaml"],
        release="forest-mlops",
        namespace="forest-mlops",
    )


def commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def test_dry_run_prints_the_steps_in_order(dry_run: str) -> None:
    assert re.findall(r"^== step \d+: (.*)$", dry_run, flags=re.M) == STEPS


def test_dry_run_shows_the_commands_of_each_stage(dry_run: str) -> None:
    lines = commands(dry_run)

    def first(pattern: str) -> int:
        return next(i for i, line in enumerate(lines) if re.search(pattern, line))

    order = [
        first(r"^kind create cluster --config kind-config\.yaml"),
        first(r"^skaffold run --kube-context kind-forest-mlops$"),
        first(r"rollout status statefulset/forest-mlops-mysql"),
        first(r"port-forward svc/forest-mlops-airflow-api-server 8080:8080 &$"),
        first(r"get secret forest-mlops-airflow -o 'jsonpath=\{\.data\.admin-password\}'"),
        first(r"curl .*-X POST http://127\.0\.0\.1:8080/auth/token"),
        first(r"-X PATCH .*'\{\"is_paused\": false\}' .*/api/v2/dags/"),
        first(r"-X POST .*/api/v2/dags/forest_cover_data_extraction/dagRuns$"),
        first(r"registered-models/alias\?name=forest-cover-type&alias=champion"),
        first(r"-X POST .* http://127\.0\.0\.1:8001/predict$"),
        first(r"forest-mlops retrain --context kind-forest-mlops --namespace forest-mlops "
              r"--wait --follow$"),
        first(r"^kind delete cluster --name forest-mlops$"),
    ]  # fmt: skip
    assert order == sorted(order)


def test_dry_run_never_puts_the_password_on_a_command_line(dry_run: str) -> None:
    login = next(line for line in commands(dry_run) if "/auth/token" in line)
    assert "-d @-" in login and "ADMIN_PASSWORD" not in login


def test_the_objects_the_script_names_exist_in_the_chart(
    dry_run: str, chart_docs: list[dict[str, Any]]
) -> None:
    named = set(re.findall(r"\b(statefulset|deployment|job|svc)/([a-z0-9-]+)", dry_run))
    assert len(named) >= 10
    for kind, name in named:
        find(chart_docs, KINDS[kind], name)
    secret = find(chart_docs, "Secret", "forest-mlops-airflow")
    assert "admin-password" in secret.get("data", {})
    for forward in re.findall(r"port-forward svc/(\S+) (\d+):(\d+)", dry_run):
        service = find(chart_docs, "Service", forward[0])
        assert int(forward[2]) in {p["port"] for p in service["spec"]["ports"]}


def test_the_sample_record_is_a_valid_course_record() -> None:
    (sample,) = re.findall(r"^SAMPLE_RECORD='(.*)'$", SCRIPT.read_text(), flags=re.M)
    record_from_mapping(json.loads(sample))


def test_unknown_arguments_are_refused() -> None:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dryrun"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "unknown argument: --dryrun" in proc.stderr


def test_shellcheck_finds_nothing() -> None:
    shellcheck = missing.tool("shellcheck", hint="apt-get install shellcheck")
    proc = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
