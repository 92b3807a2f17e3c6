"""The Prometheus rules as code (charts/forest-mlops/files/prometheus/rules/), checked by promtool.

`promtool check rules` parses every rule file; `promtool test rules` runs the unit tests in
promtool/ (input series -> which alerts fire, which stay silent, what recording rules compute).
Around them: every alert has a firing and a silent case, its severity, summary, description and
a runbook_url whose section exists in docs/OBSERVABILITY.md; every metric a rule reads is one a
component really exports (the services' own registries, the statsd mapping, kube-state-metrics)
and is in the doc's inventory; the objectives are the targets the project states elsewhere.

promtool comes from Debian's `prometheus` package (.ci/run installs it): without it these tests
fail under CI and skip elsewhere, listed at the end of the run (tests/support/missing).
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import prometheus
from tests.support.helm import REPO_ROOT

PROMETHEUS_FILES = REPO_ROOT / "charts" / "forest-mlops" / "files" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_FILES / "rules").glob("*.yaml"))
UNIT_TESTS = sorted((Path(__file__).parent / "promtool").glob("*.test.yaml"))
DOC = REPO_ROOT / "docs" / "OBSERVABILITY.md"
RUNBOOK_BASE = "https://github.com/forest-mlops/forest-mlops/blob/main/docs/OBSERVABILITY.md#"
PROMTOOL_HINT = prometheus.PROMTOOL_HINT

# kube-state-metrics' standard series the rules and dashboards read (its documented names, not
# ours to export).
KUBE_STATE_METRICS = frozenset(
    {
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits",
        # With --metric-labels-allowlist (prometheus.kubeStateMetrics.podLabels): the pods
        # dashboard joins the resources to their component.
        "kube_pod_labels",
    }
)
# What MLflow's server exports through prometheus_flask_exporter and the rules and dashboards
# read (tests/test_mlflow_auth.py finds each in a real server's metrics).
MLFLOW_SERVER_METRICS = frozenset(
    {
        "mlflow_http_request_total",
        "mlflow_http_request_duration_seconds_bucket",
    }
)
METRIC_PREFIXES = (
    "forest_inference_",
    "mlflow_",
    "forest_champion_",
    "forest_ingestion_",
    "api_data_",
    "airflow_",
    "kube_",
)


promtool = prometheus.promtool


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in alerts()]


def objective(name: str) -> float:
    """The constant of an objective:* recording rule (`vector(N)`)."""
    for rule in rules():
        if rule.get("record") == name:
            match = re.fullmatch(r"vector\(([0-9.e+-]+)\)", rule["expr"].strip())
            assert match, f"{name} is not a constant: {rule['expr']}"
            return float(match.group(1))
    raise KeyError(name)


def module_constant(path: Path, name: str) -> float:
    """A module-level number, read without importing the module (bench/ imports MLflow)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, int | float), f"{path}: {name} = {value!r}"
            return float(value)
    raise KeyError(f"{name} not in {path}")


def referenced_metrics() -> set[str]:
    """Metric names the rules read (recording rules' own names and objective:* excluded)."""
    names: set[str] = set()
    for rule in rules():
        for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["expr"]):
            if token.startswith(METRIC_PREFIXES):
                names.add(token)
    return names


def test_the_rule_files_pass_promtool_check() -> None:
    assert RULE_FILES, f"no rule files in {PROMETHEUS_FILES / 'rules'}"
    proc = run([promtool(), "check", "rules", *map(str, RULE_FILES)], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(unit_test: Path) -> None:
    proc = run([promtool(), "test", "rules", unit_test.name], cwd=unit_test.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_rule_file_is_unit_tested() -> None:
    loaded = {
        (test.parent / name).resolve()
        for test in UNIT_TESTS
        for name in yaml.safe_load(test.read_text())["rule_files"]
    }
    assert {path.resolve() for path in RULE_FILES} <= loaded


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test in UNIT_TESTS:
        for case in yaml.safe_load(test.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set(alert_names())
    assert names - firing == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown staying silent"


def test_the_issue_22_alerts_are_all_there() -> None:
    assert sorted(alert_names()) == [
        "ForestChampionBatchAccuracyDropped",
        "ForestDagRunFailed",
        "ForestDataApiNotAdvancing",
        "ForestInferenceErrorRatioHigh",
        "ForestInferenceLatencyOverObjective",
        "ForestInferenceNoChampionLoaded",
        "ForestIngestionFailing",
        "ForestPodRestarting",
        "ForestScrapeTargetDown",
        "ForestTrainingOverBudget",
    ]


@pytest.mark.parametrize("alert", alerts(), ids=lambda rule: rule["alert"])
def test_each_alert_has_severity_summary_and_its_runbook_section(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"warning", "critical"}
    annotations = alert["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    anchor = alert["alert"].lower()
    assert annotations["runbook_url"] == RUNBOOK_BASE + anchor
    # GitHub's anchor of a "### ForestSomething" heading is its lower-cased text.
    headings = re.findall(r"^### (\S+)$", DOC.read_text(), re.MULTILINE)
    assert alert["alert"] in headings, f"no '### {alert['alert']}' section in {DOC.name}"


def test_recording_rules_follow_level_metric_operations() -> None:
    for rule in rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_objectives_are_the_targets_the_project_states() -> None:
    p99_ms = module_constant(REPO_ROOT / "bench" / "inference.py", "TARGET_SINGLE_P99_MS")
    budget = module_constant(REPO_ROOT / "bench" / "training.py", "BUDGET_SECONDS")
    assert objective("objective:forest_inference_request_duration_seconds:p99") == p99_ms / 1000
    assert objective("objective:forest_training_duration_seconds:budget") == budget


def test_the_p99_objective_is_a_latency_bucket_edge() -> None:
    from inference_api.metrics import LATENCY_BUCKETS

    assert objective("objective:forest_inference_request_duration_seconds:p99") in LATENCY_BUCKETS


def exported_names(registry: Any) -> set[str]:
    """The series names a prometheus_client registry exposes, whether or not observed yet."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def statsd_mapped_names() -> set[str]:
    mapping = yaml.safe_load((PROMETHEUS_FILES / "statsd-mapping.yaml").read_text())
    names: set[str] = set()
    for item in mapping["mappings"]:
        if item.get("action") == "drop":
            continue
        if item.get("observer_type") == "histogram":
            names |= {item["name"] + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(item["name"])
    return names


def test_every_metric_the_rules_read_is_exported() -> None:
    from api_data.metrics import ApiMetrics
    from inference_api.metrics import ServiceMetrics

    class NoModel:  # what ServiceMetrics reads of a ModelHolder
        current = None

        def staleness_seconds(self) -> None:
            return None

    exported = (
        exported_names(ServiceMetrics(NoModel()).registry)
        | exported_names(ApiMetrics().registry)
        | statsd_mapped_names()
        | KUBE_STATE_METRICS
    )
    assert referenced_metrics() - exported == set()


def test_the_doc_inventory_lists_every_metric_the_rules_read() -> None:
    text = DOC.read_text()
    assert [name for name in sorted(referenced_metrics()) if f"`{name}`" not in text] == []
