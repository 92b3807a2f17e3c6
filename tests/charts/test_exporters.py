"""Prometheus' two exporters in the prometheus subchart, and Airflow's side of StatsD.

The StatsD exporter runs the umbrella's Airflow mapping (one copy, through a symlink) and every
Airflow pod, task pods included, is configured to send to its Service; kube-state-metrics reads
the release namespace only, with a Role that grants list/watch of exactly the kinds it is told
to export. The network side (who may send, scrape, reach the API) is in test_network_flows.py;
the exporter running with Airflow's own client and Prometheus in tests/images/test_exporters.py.
"""

from __future__ import annotations

import configparser
import shutil
from typing import Any

import pytest

from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import CHART_DIR, HelmError, container, find, render_chart
from tests.support.netpol import task_pod_template

MAPPING = CHART_DIR / "files" / "prometheus" / "statsd-mapping.yaml"
LOCKED_DOWN = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    """The default render, Airflow on (its pods are the exporter's senders)."""
    return render_chart()


def airflow_cfg(docs: list[dict[str, Any]]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(find(docs, "ConfigMap", "fm-airflow-config")["data"]["airflow.cfg"])
    return parser


class TestStatsdExporter:
    def test_runs_the_pinned_official_image_with_the_mapping_and_udp_only(self, docs):
        main = container(find(docs, "Deployment", "fm-statsd-exporter"), "statsd-exporter")
        assert main["image"] == "prom/statsd-exporter:v0.29.0"
        assert "command" not in main  # the image's /bin/statsd_exporter
        assert main["args"] == [
            "--statsd.mapping-config=/etc/statsd_exporter/mapping.yaml",
            "--statsd.listen-udp=:9125",
            "--statsd.listen-tcp=",
            "--web.listen-address=:9102",
        ]
        assert "--web.enable-lifecycle" not in main["args"]
        assert main["ports"] == [
            {"name": "statsd", "containerPort": 9125, "protocol": "UDP"},
            {"name": "metrics", "containerPort": 9102, "protocol": "TCP"},
        ]

    def test_the_mapping_is_the_umbrellas_file_through_a_symlink(self, docs):
        link = CHART_DIR / "charts" / "prometheus" / "statsd-mapping.yaml"
        assert link.is_symlink() and link.resolve() == MAPPING.resolve()
        data = find(docs, "ConfigMap", "fm-statsd-exporter")["data"]
        assert data == {"mapping.yaml": MAPPING.read_text()}
        deployment = find(docs, "Deployment", "fm-statsd-exporter")
        mounts = {m["name"]: m for m in container(deployment, "statsd-exporter")["volumeMounts"]}
        assert mounts["mapping"] == {
            "name": "mapping", "mountPath": "/etc/statsd_exporter", "readOnly": True
        }  # fmt: skip

    def test_a_changed_mapping_rolls_the_pod(self, docs, tmp_path):
        """The pod template's checksum follows the mapping: an edit to the file changes it
        (a new pod reads the new mapping), the unchanged chart renders it the same."""
        copy = tmp_path / "forest-mlops"
        # Symlinks followed: some point outside the chart. The subchart reads its copy.
        shutil.copytree(CHART_DIR, copy)
        mapping = copy / "charts" / "prometheus" / "statsd-mapping.yaml"
        mapping.write_text(mapping.read_text() + "# an edit\n")

        def checksum(rendered: list[dict[str, Any]]) -> str:
            deployment = find(rendered, "Deployment", "fm-statsd-exporter")
            value: str = deployment["spec"]["template"]["metadata"]["annotations"][
                "checksum/mapping"
            ]
            return value

        assert len(checksum(docs)) == 64
        assert checksum(render_chart(chart=copy)) != checksum(docs)
        assert checksum(render_chart()) == checksum(docs)

    def test_locked_down_without_a_token(self, docs):
        deployment = find(docs, "Deployment", "fm-statsd-exporter")
        spec = deployment["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsUser"] == 65534
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container(deployment, "statsd-exporter")["securityContext"] == LOCKED_DOWN
        assert deployment["spec"]["replicas"] == 1  # counters summed in one place

    def test_service_names_and_ports(self, docs):
        service = find(docs, "Service", "fm-statsd-exporter")
        assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
            ("statsd", 9125, "UDP"),
            ("metrics", 9102, "TCP"),
        ]
        assert service["spec"]["selector"] == {
            "app.kubernetes.io/name": "prometheus",
            "app.kubernetes.io/instance": "fm",
            "app.kubernetes.io/component": "statsd-exporter",
        }

    def test_off_renders_none_of_it_and_no_scrape_job(self):
        docs = render_chart(
            {"prometheus": {"statsdExporter": {"enabled": False}},
             "airflow": {"metrics": {"statsd": {"enabled": False}}}}
        )  # fmt: skip
        assert not [d for d in docs if "statsd" in d["metadata"]["name"]]
        text = find(docs, "ConfigMap", "fm-prometheus")["data"]["prometheus.yml"]
        assert "airflow-statsd" not in text
        assert airflow_cfg(docs)["metrics"]["statsd_on"] == "False"


class TestAirflowSendsStatsd:
    def test_every_component_and_task_pod_reads_the_metrics_section(self, docs):
        metrics = dict(airflow_cfg(docs)["metrics"])
        assert metrics == {
            "statsd_on": "True",
            "statsd_host": "fm-statsd-exporter",
            "statsd_port": "9125",
            "statsd_prefix": "airflow",  # the prefix statsd-mapping.yaml matches
        }
        pods = [
            d["spec"]["template"]["spec"]
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("fm-airflow-")
        ] + [task_pod_template(docs)["spec"]]
        assert len(pods) == 4  # api-server, scheduler, dag-processor, task pods
        for spec in pods:
            mounts = {m["mountPath"]: m for c in spec["containers"] for m in c["volumeMounts"]}
            assert mounts["/opt/airflow/airflow.cfg"]["subPath"] == "airflow.cfg"
            (config,) = [v for v in spec["volumes"] if v["name"] == "config"]
            assert config["configMap"]["name"] == "fm-airflow-config"

    def test_a_statsd_server_of_your_own(self):
        docs = render_chart(
            {"prometheus": {"enabled": False},
             "airflow": {"metrics": {"statsd": {"host": "statsd.example.org", "port": 8125}}}}
        )  # fmt: skip
        metrics = airflow_cfg(docs)["metrics"]
        assert (metrics["statsd_host"], metrics["statsd_port"]) == ("statsd.example.org", "8125")
        names = {d["metadata"]["name"] for d in docs}
        assert "fm-airflow-statsd-egress" not in names  # your own server: extraRules

    @pytest.mark.parametrize(
        "values",
        [
            {"prometheus": {"enabled": False}},
            {"prometheus": {"statsdExporter": {"enabled": False}}},
        ],
        ids=["no-prometheus", "no-exporter"],
    )
    def test_sending_to_an_exporter_that_is_not_deployed_is_refused(self, values):
        with pytest.raises(HelmError, match=r"airflow\.metrics\.statsd\.enabled is on but"):
            render_chart(values)

    def test_another_port_for_the_charts_exporter_is_refused(self):
        with pytest.raises(HelmError, match=r"airflow\.metrics\.statsd\.port must stay 9125"):
            render_chart({"airflow": {"metrics": {"statsd": {"port": 8125}}}})


class TestKubeStateMetrics:
    def test_namespace_only_and_the_listed_kinds_only(self, docs):
        main = container(find(docs, "Deployment", "fm-kube-state-metrics"), "kube-state-metrics")
        assert main["image"] == "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0"
        assert "command" not in main
        assert main["args"] == [
            "--port=8080",
            "--telemetry-port=8081",
            "--namespaces=forest",
            "--resources=pods,deployments,statefulsets,cronjobs,jobs",
            "--metric-labels-allowlist=pods=[app.kubernetes.io/name,app.kubernetes.io/component]",
        ]

    def test_a_namespaced_role_grants_list_and_watch_of_exactly_those_kinds(self, docs):
        assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
        role = find(docs, "Role", "fm-kube-state-metrics")
        assert role["metadata"]["namespace"] == "forest"
        granted = {
            (group, resource)
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
        }
        assert granted == {
            ("", "pods"),
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
        }
        assert all(rule["verbs"] == ["list", "watch"] for rule in role["rules"])
        main = container(find(docs, "Deployment", "fm-kube-state-metrics"), "kube-state-metrics")
        (resources,) = [a for a in main["args"] if a.startswith("--resources=")]
        assert set(resources.removeprefix("--resources=").split(",")) == {r for _, r in granted}

    def test_the_binding_gives_the_role_to_its_own_service_account(self, docs):
        binding = find(docs, "RoleBinding", "fm-kube-state-metrics")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "fm-kube-state-metrics"
        }  # fmt: skip
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "fm-kube-state-metrics", "namespace": "forest"}
        ]
        account = find(docs, "ServiceAccount", "fm-kube-state-metrics")
        assert account["automountServiceAccountToken"] is False
        spec = find(docs, "Deployment", "fm-kube-state-metrics")["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == "fm-kube-state-metrics"
        assert spec["automountServiceAccountToken"] is True  # this pod alone asks for it

    def test_locked_down_and_probed(self, docs):
        deployment = find(docs, "Deployment", "fm-kube-state-metrics")
        main = container(deployment, "kube-state-metrics")
        assert main["securityContext"] == LOCKED_DOWN
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65534
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "telemetry"}
        (port,) = find(docs, "Service", "fm-kube-state-metrics")["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (8080, "metrics")  # not its telemetry

    def test_off_renders_none_of_it(self):
        docs = render_chart(
            WITHOUT_AIRFLOW | {"prometheus": {"kubeStateMetrics": {"enabled": False}}}
        )
        assert not [d for d in docs if "kube-state-metrics" in d["metadata"]["name"]]
        text = find(docs, "ConfigMap", "fm-prometheus")["data"]["prometheus.yml"]
        assert "kube-state-metrics" not in text
