"""The prometheus subchart: its configuration holds the rule files of files/prometheus/rules as
they are (one copy), scrapes the release's Services by their names, and `promtool check config`
accepts it; the server runs locked down, with no token, no lifecycle API and no password."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support import missing
from tests.support.helm import CHART_DIR, HelmError, container, find, render_chart

RULES_DIR = CHART_DIR / "files" / "prometheus" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))
PROMTOOL_HINT = "apt-get install prometheus: Debian's package ships promtool; .ci/run installs it"


def config_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    data = find(docs, "ConfigMap", "fm-prometheus")["data"]
    config: dict[str, Any] = yaml.safe_load(data["prometheus.yml"])
    return config


def jobs_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config_of(docs)["scrape_configs"]}


def write_config(docs: list[dict[str, Any]], where: Path) -> Path:
    """The ConfigMap laid out as the pod's volume lays it out (its items' paths)."""
    deployment = find(docs, "Deployment", "fm-prometheus")
    (volume,) = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
    ]
    data = find(docs, "ConfigMap", "fm-prometheus")["data"]
    for item in volume["configMap"]["items"]:
        target = where / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[item["key"]])
    return where / "prometheus.yml"


@pytest.fixture(scope="module")
def deployment(platform_docs):
    return find(platform_docs, "Deployment", "fm-prometheus")


class TestRules:
    def test_every_rule_file_is_loaded_as_it_is_in_files(self, platform_docs):
        data = find(platform_docs, "ConfigMap", "fm-prometheus")["data"]
        assert RULE_FILES
        for path in RULE_FILES:
            assert data[path.name] == path.read_text(), path.name
        assert config_of(platform_docs)["rule_files"] == [f"rules/{p.name}" for p in RULE_FILES]

    def test_every_rule_group_is_there(self, platform_docs):
        data = find(platform_docs, "ConfigMap", "fm-prometheus")["data"]
        expected = {
            group["name"]
            for path in RULE_FILES
            for group in yaml.safe_load(path.read_text())["groups"]
        }
        loaded = {
            group["name"]
            for key, text in data.items()
            if key != "prometheus.yml"
            for group in yaml.safe_load(text)["groups"]
        }
        assert loaded == expected and len(expected) >= 5

    def test_the_rules_are_the_umbrellas_files_through_a_symlink(self):
        link = CHART_DIR / "charts" / "prometheus" / "rules"
        assert link.is_symlink()
        assert link.resolve() == RULES_DIR.resolve()

    def test_the_pod_mounts_each_rule_file_where_the_config_names_it(self, deployment):
        (volume,) = [
            v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
        ]
        paths = {item["path"] for item in volume["configMap"]["items"]}
        assert paths == {"prometheus.yml", *(f"rules/{p.name}" for p in RULE_FILES)}
        mounts = {m["name"]: m for m in container(deployment, "prometheus")["volumeMounts"]}
        assert mounts["config"]["mountPath"] == "/etc/prometheus"
        assert mounts["config"]["readOnly"] is True

    def test_a_changed_rule_or_config_rolls_the_pod(self, deployment):
        other = find(
            render_chart(WITHOUT_AIRFLOW | {"prometheus": {"scrapeInterval": "30s"}}),
            "Deployment",
            "fm-prometheus",
        )
        checksum = "checksum/config"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations[checksum]) == 64
        assert (
            other["spec"]["template"]["metadata"]["annotations"][checksum]
            != (annotations[checksum])
        )


class TestScrapeJobs:
    def test_jobs_by_default(self, platform_docs):
        assert set(jobs_of(platform_docs)) == {
            "prometheus", "inference", "api-data", "mlflow", "airflow-statsd",
            "kube-state-metrics",
        }  # fmt: skip
        assert config_of(platform_docs)["global"] == {
            "scrape_interval": "15s",
            "evaluation_interval": "15s",
        }

    def test_targets_are_the_release_services_on_their_metrics_ports(self, platform_docs):
        """Each target host is a Service of the release; the port it names lands on the
        container port where the service's /metrics is (inference 8001, the data API 8000,
        MLflow's sidecar and the StatsD exporter 9102, kube-state-metrics 8080)."""
        jobs = jobs_of(platform_docs)
        scraped = [name for name in jobs if name != "prometheus"]
        addresses = [
            (job_name, name, entry["port"])
            for job_name in scraped
            for entry in jobs[job_name].get("dns_sd_configs", [])
            for name in entry["names"]
        ] + [
            (job_name, *target.rsplit(":", 1))
            for job_name in scraped
            for entry in jobs[job_name].get("static_configs", [])
            for target in entry["targets"]
        ]
        resolved = {}
        for job_name, host, port in addresses:
            service = find(platform_docs, "Service", host)
            (entry,) = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
            resolved[job_name] = (service["metadata"]["name"], entry["targetPort"], int(port))
        assert resolved == {
            "inference": ("fm-inference-headless", "http", 8001),
            "api-data": ("fm-api-data", "http", 8000),
            "mlflow": ("fm-mlflow-metrics", "metrics", 9102),
            "airflow-statsd": ("fm-statsd-exporter", "metrics", 9102),
            "kube-state-metrics": ("fm-kube-state-metrics", "metrics", 8080),
        }
        for service_name, target_port, port in resolved.values():
            selector = find(platform_docs, "Service", service_name)["spec"]["selector"]
            (workload,) = [
                d
                for d in platform_docs
                if d["kind"] == "Deployment"
                and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            ]
            ports = {
                p["name"]: p["containerPort"]
                for item in workload["spec"]["template"]["spec"]["containers"]
                for p in item.get("ports", [])
            }
            assert ports[target_port] == port, service_name

    def test_inference_replicas_are_scraped_one_by_one(self, platform_docs):
        """Through its headless Service (one A record per ready pod), not R-inference, which
        would hand each scrape to any replica and mix their counters."""
        (entry,) = jobs_of(platform_docs)["inference"]["dns_sd_configs"]
        assert entry == {"names": ["fm-inference-headless"], "type": "A", "port": 8001}
        headless = find(platform_docs, "Service", "fm-inference-headless")
        assert headless["spec"]["clusterIP"] == "None"
        assert (
            headless["spec"]["selector"]
            == find(platform_docs, "Service", "fm-inference")["spec"]["selector"]
        )

    def test_mlflow_is_scraped_through_its_sidecar_one_replica_at_a_time(self, platform_docs):
        """Its own /metrics wants a login: Prometheus reads the sidecar, which serves the
        files the server writes to a volume only the two containers mount."""
        (entry,) = jobs_of(platform_docs)["mlflow"]["dns_sd_configs"]
        assert entry == {"names": ["fm-mlflow-metrics"], "type": "A", "port": 9102}
        headless = find(platform_docs, "Service", "fm-mlflow-metrics")
        assert headless["spec"]["clusterIP"] == "None"
        mlflow = find(platform_docs, "Deployment", "fm-mlflow")
        service = find(platform_docs, "Service", "fm-mlflow")
        assert headless["spec"]["selector"] == service["spec"]["selector"]
        server, sidecar = container(mlflow, "mlflow"), container(mlflow, "metrics")
        assert sidecar["image"] == server["image"]  # forest-mlops is in the MLflow image
        directory = server["command"][server["command"].index("--expose-prometheus") + 1]
        assert sidecar["command"] == [
            "forest-mlops", "mlflow-metrics", "--directory", directory, "--port", "9102"
        ]  # fmt: skip
        mounts = {
            c["name"]: {m["name"]: m for m in c["volumeMounts"]}
            for c in mlflow["spec"]["template"]["spec"]["containers"]
        }
        assert mounts["mlflow"]["metrics"]["mountPath"] == directory
        assert mounts["metrics"]["metrics"] == {
            "name": "metrics", "mountPath": directory, "readOnly": True
        }  # fmt: skip
        # Not the server's /tmp, where the auth ini is: a /tmp of its own.
        assert set(mounts["metrics"]) == {"metrics", "metrics-tmp"}
        assert mounts["metrics"]["metrics-tmp"]["mountPath"] == "/tmp"

    def test_without_the_sidecar_mlflow_is_neither_scraped_nor_counted(self):
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {"mlflow": {"metrics": {"enabled": False}},
               "prometheus": {"scrape": {"mlflow": False}}}
        )  # fmt: skip
        assert "mlflow" not in jobs_of(docs)
        mlflow = find(docs, "Deployment", "fm-mlflow")
        assert [c["name"] for c in mlflow["spec"]["template"]["spec"]["containers"]] == ["mlflow"]
        assert "--expose-prometheus" not in container(mlflow, "mlflow")["command"]
        assert not [d for d in docs if d["metadata"]["name"] == "fm-mlflow-metrics"]

    def test_a_job_can_be_switched_off_and_extra_jobs_added(self):
        extra = {"job_name": "elsewhere", "static_configs": [{"targets": ["sx:9102"]}]}
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {"prometheus": {"scrape": {"apiData": False}, "extraScrapeConfigs": [extra],
                              "kubeStateMetrics": {"enabled": False}}}
        )  # fmt: skip
        jobs = jobs_of(docs)
        assert list(jobs) == ["prometheus", "inference", "mlflow", "airflow-statsd", "elsewhere"]
        assert jobs["elsewhere"] == extra

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            (
                {"inference": {"enabled": False}},
                "prometheus.scrape.inference is on but inference.enabled is off",
            ),
            (
                {"api-data": {"enabled": False}},
                "prometheus.scrape.apiData is on but api-data.enabled is off",
            ),
            (
                {"mlflow": {"metrics": {"enabled": False}}},
                "prometheus.scrape.mlflow is on but mlflow.enabled or mlflow.metrics.enabled"
                " is off",
            ),
        ],
    )
    def test_a_job_for_a_component_that_is_off_is_refused(self, values, message):
        with pytest.raises(HelmError, match=message):
            render_chart(WITHOUT_AIRFLOW | values)

    def test_rendered_config_passes_promtool(self, platform_docs, tmp_path):
        """The real check: promtool (Debian's 2.42, the offline stand-in's version) parses the
        rendered prometheus.yml and every rule file it names, from the pod's file layout."""
        promtool = missing.tool("promtool", hint=PROMTOOL_HINT)
        path = write_config(platform_docs, tmp_path)
        proc = subprocess.run(
            [promtool, "check", "config", str(path)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert f"SUCCESS: {len(RULE_FILES)} rule files found" in out
        assert out.count("rules found") == len(RULE_FILES), out


class TestDeployment:
    def test_runs_the_image_entrypoint_with_flags_valid_in_2_42_and_3(self, deployment):
        main = container(deployment, "prometheus")
        assert "command" not in main  # the image's server: /bin/prometheus or the stand-in's
        assert main["args"] == [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=2d",
            "--storage.tsdb.retention.size=1GB",
            "--web.listen-address=:9090",
        ]
        assert main["image"] == "quay.io/prometheus/prometheus:v3.16.0"

    def test_no_lifecycle_or_admin_api(self, deployment):
        # Reachable without a login: neither shutdown/reload nor TSDB deletion over HTTP.
        args = " ".join(container(deployment, "prometheus")["args"])
        assert "--web.enable-lifecycle" not in args
        assert "--web.enable-admin-api" not in args

    def test_probes(self, deployment):
        main = container(deployment, "prometheus")
        assert main["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
        assert main["startupProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
        assert main["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
        assert main["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]

    def test_locked_down_without_a_token(self, deployment):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert "serviceAccountName" not in spec
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "fsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container(deployment, "prometheus")["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }

    def test_tsdb_in_a_bounded_emptydir(self, deployment):
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["data"] == {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}}
        mounts = container(deployment, "prometheus")["volumeMounts"]
        assert {m["name"]: m["mountPath"] for m in mounts}["data"] == "/prometheus"

    def test_no_secret_no_password_no_rbac(self, platform_docs):
        mine = [
            d
            for d in platform_docs
            if d["metadata"]["labels"].get("app.kubernetes.io/name") == "prometheus"
            and d["metadata"]["labels"]["app.kubernetes.io/component"] == "monitoring"
        ]
        assert {(d["kind"], d["metadata"]["name"]) for d in mine} == {
            ("ConfigMap", "fm-prometheus"),
            ("Deployment", "fm-prometheus"),
            ("Service", "fm-prometheus"),
        }
        main = container(find(platform_docs, "Deployment", "fm-prometheus"), "prometheus")
        assert "env" not in main and "envFrom" not in main
        text = find(platform_docs, "ConfigMap", "fm-prometheus")["data"]["prometheus.yml"]
        assert not any(word in text for word in ("password", "basic_auth", "authorization"))

    def test_service_on_9090(self, platform_docs):
        (port,) = find(platform_docs, "Service", "fm-prometheus")["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (9090, "http")

    def test_off_renders_nothing_of_it(self):
        docs = render_chart(WITHOUT_AIRFLOW | {"prometheus": {"enabled": False}})
        assert not [d for d in docs if "prometheus" in d["metadata"]["name"]]
