"""Perses in the prometheus subchart (prometheus.perses, issue 22): the pinned official image,
locked down, its config and provisioning ConfigMaps, and the dashboards generated at render time
from the same files as the graph-page links (one source of truth). The network side is in
test_network_flows.py (TestPerses); the real server reading these files in
tests/observability/test_perses.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from forest_mlops.monitoring import dashboards, perses
from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import CHART_DIR, container, find, render_chart

LOCKED_DOWN = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render_chart(WITHOUT_AIRFLOW)


def provisioning(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    data = find(docs, "ConfigMap", "fm-perses-provisioning")["data"]
    return {name: yaml.safe_load(text) for name, text in data.items()}


def test_runs_the_pinned_official_image_locked_down(docs):
    deployment = find(docs, "Deployment", "fm-perses")
    main = container(deployment, "perses")
    assert main["image"] == "persesdev/perses:v0.52.0"
    assert "command" not in main  # the image's /bin/perses
    assert main["args"] == ["--config=/etc/perses/chart/config.yaml", "--log.level=warning"]
    assert main["securityContext"] == LOCKED_DOWN
    spec = deployment["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["resources"]["limits"] and main["resources"]["requests"]
    assert main["readinessProbe"]["httpGet"] == {"path": "/api/v1/health", "port": "http"}
    # The read-only root: the database, the unpacked plugins and /tmp are emptyDirs.
    writable = {m["mountPath"] for m in main["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/perses", "/etc/perses/plugins", "/tmp"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in main["volumeMounts"]:
        if mount["mountPath"] in writable:
            assert "emptyDir" in volumes[mount["name"]]
    assert len(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]) == 64


def test_the_config_points_at_the_mounted_folders(docs):
    config = yaml.safe_load(find(docs, "ConfigMap", "fm-perses")["data"]["config.yaml"])
    assert config["database"] == {"file": {"folder": "/perses/data", "extension": "yaml"}}
    assert config["plugin"] == {
        "path": "/etc/perses/plugins", "archive_path": "/etc/perses/plugins-archive"
    }  # fmt: skip
    assert config["provisioning"]["folders"] == ["/etc/perses/provisioning"]
    mounts = {m["mountPath"] for m in container(find(docs, "Deployment", "fm-perses"), "perses")
              ["volumeMounts"]}  # fmt: skip
    assert {"/etc/perses/chart", "/etc/perses/provisioning", "/perses"} <= mounts


def test_service_is_8080(docs):
    (port,) = find(docs, "Service", "fm-perses")["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["protocol"]) == (8080, "http", "TCP")


def test_the_project_and_its_prometheus_datasource(docs):
    files = provisioning(docs)
    assert files["project.yaml"]["kind"] == "Project"
    assert files["project.yaml"]["metadata"]["name"] == "fm"  # the release name
    ds = files["datasource-prometheus.yaml"]
    assert ds["metadata"] == {"name": perses.DATASOURCE, "project": "fm"}
    assert ds["spec"]["default"] is True
    assert ds["spec"]["plugin"]["kind"] == "PrometheusDatasource"
    # Proxy mode: Perses' server runs the queries, the browser needs no route to Prometheus.
    assert ds["spec"]["plugin"]["spec"]["proxy"] == {
        "kind": "HTTPProxy", "spec": {"url": "http://fm-prometheus:9090"}
    }  # fmt: skip
    find(docs, "Service", "fm-prometheus")


def test_one_dashboard_per_file_generated_from_it(docs):
    files = provisioning(docs)
    boards = dashboards.load_dashboards()
    assert {n for n in files if n.startswith("dashboard-")} == {
        f"dashboard-{b.name}.yaml" for b in boards
    }
    for board in boards:
        served = files[f"dashboard-{board.name}.yaml"]
        assert served["kind"] == "Dashboard"
        assert served["metadata"] == {"name": board.name, "project": "fm"}
        spec = served["spec"]
        assert spec["display"]["name"] == board.title
        assert spec["duration"] == board.range
        assert perses.served_panels(spec) == perses.expected_panels(board)
        for panel in spec["panels"].values():
            assert panel["spec"]["plugin"] == {"kind": "TimeSeriesChart", "spec": {}}
            kinds = {q["spec"]["plugin"]["kind"] for q in panel["spec"]["queries"]}
            assert kinds == {"PrometheusTimeSeriesQuery"}
        # Two panels a row, 12 of the grid's 24 columns each.
        items = spec["layouts"][0]["spec"]["items"]
        assert [(i["x"], i["y"]) for i in items] == [
            (12 * (n % 2), 8 * (n // 2)) for n in range(len(board.panels))
        ]


def test_the_dashboards_folder_is_the_umbrellas_through_a_symlink():
    link = CHART_DIR / "charts" / "prometheus" / "dashboards"
    assert link.is_symlink() and link.resolve() == dashboards.DASHBOARDS_DIR.resolve()


def test_a_project_name_of_your_own():
    docs = render_chart(WITHOUT_AIRFLOW | {"prometheus": {"perses": {"project": "ops"}}})
    files = provisioning(docs)
    assert {f["metadata"].get("project") for n, f in files.items() if n != "project.yaml"} == {
        "ops"
    }
    assert files["project.yaml"]["metadata"]["name"] == "ops"


def test_off_renders_none_of_it():
    docs = render_chart(WITHOUT_AIRFLOW | {"prometheus": {"perses": {"enabled": False}}})
    assert not [d for d in docs if "perses" in d["metadata"]["name"]]
    policy = find(docs, "NetworkPolicy", "fm-prometheus")
    assert "ingress" not in policy["spec"]  # Prometheus then admits no pod at all
