"""Every connection the platform's pods make, derived from what the chart configures, against
the rendered NetworkPolicies (ingress AND egress, tests/support/netpol.py).

The flows are not listed by hand first: each container's environment (Secrets, ConfigMaps and
$(VAR) resolved as the kubelet does, envFrom included), command and args are searched for
`scheme://host:port` and `host port`, and a mounted Prometheus configuration for its scrape
targets (static and DNS-discovered), every host that is a Service of the release becomes a
flow to the pods that Service selects, on the port it forwards to. Sources: every workload of
the chart (init containers included), the Airflow task pod of the rendered pod template with
the labels the KubernetesExecutor adds for each DAG, and k8s/'s retraining CronJob. FLOWS is
the reviewed table of them (docs/RELIABILITY.md shows it): a new URL in any env fails here
until it is in the table and a policy lets it through. Configured but never dialled (UNUSED)
must stay blocked. The flows no env names (DNS, the Kubernetes API) have their own tests.

Rendered as make e2e deploys it: release and namespace forest-mlops, values-kind.yaml.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import yaml

from forest_mlops.load import job as load_job
from tests.charts.conftest import KIND_VALUES
from tests.e2e import probes
from tests.support.helm import container_env, expand_vars, find, render_chart
from tests.support.netpol import (
    DAGS,
    External,
    Pod,
    connects,
    executor_labels,
    pod_of,
    pod_spec_and_labels,
    policies_of,
    retrain_objects,
    selecting,
    task_pod_template,
)

RELEASE = NAMESPACE = "forest-mlops"
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
# A node address on kind's network: where Service kubernetes.default's endpoint (the API
# server on the control-plane node, port 6443) lives; policies see it after kube-proxy's DNAT.
API_SERVER = External("172.18.0.2")
COREDNS = Pod("coredns", {"k8s-app": "kube-dns"}, namespace="kube-system")
INTERNET = External("151.101.1.1")

# (source, Service) -> why the source is configured with that Service's address but never
# connects to it. Each must be refused by the policies: least privilege, not oversight.
UNUSED = {
    ("Deployment/forest-mlops-airflow-dag-processor", "forest-mlops-mlflow"): "envFrom "
    "R-platform only for settings DAG files read while parsed; parsing opens no connection "
    "(tests/dags/test_dag_integrity.py)",
    ("Deployment/forest-mlops-airflow-dag-processor", "forest-mlops-api-data"): "as above",
    ("Deployment/forest-mlops-airflow-dag-processor", "forest-mlops-airflow-api-server"): (
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL is in every control-plane env; the "
        "dag-processor runs the execution API in process (InProcessExecutionAPI)"
    ),
    ("Deployment/forest-mlops-airflow-scheduler", "forest-mlops-airflow-api-server"): (
        "the scheduler only hands the URL to task pods; it calls no execution API itself"
    ),
    ("Deployment/forest-mlops-airflow-api-server", "forest-mlops-airflow-api-server"): (
        "it serves the execution API; it does not call itself through its Service"
    ),
    ("task:forest_cover_model_training", "forest-mlops-api-data"): "FOREST_API_URL comes "
    "with R-platform; only the extraction DAG's fetch calls the data API",
    ("CronJob/forest-mlops-retrain", "forest-mlops-api-data"): "FOREST_API_URL comes with "
    "R-platform; `forest-mlops train` reads MySQL, never the data API",
}

# Every flow the configuration names, after UNUSED: source -> (Service, port it forwards to).
# What each is for: docs/RELIABILITY.md, "Who may reach what".
FLOWS = {
    ("Deployment/forest-mlops-mlflow", "forest-mlops-mysql", 3306),  # wait, db upgrade, store
    ("Deployment/forest-mlops-mlflow", "forest-mlops-minio", 9000),  # artifact proxy
    ("Deployment/forest-mlops-inference", "forest-mlops-mlflow", 5000),  # registry, model
    ("Deployment/forest-mlops-inference", "forest-mlops-mysql", 3306),  # prediction log
    ("Job/forest-mlops-minio-buckets-1", "forest-mlops-minio", 9000),  # bucket bootstrap
    ("Deployment/forest-mlops-airflow-api-server", "forest-mlops-postgresql", 5432),
    ("Deployment/forest-mlops-airflow-api-server", "forest-mlops-minio", 9000),  # task logs
    ("Deployment/forest-mlops-airflow-scheduler", "forest-mlops-postgresql", 5432),
    ("Deployment/forest-mlops-airflow-scheduler", "forest-mlops-minio", 9000),
    ("Deployment/forest-mlops-airflow-dag-processor", "forest-mlops-postgresql", 5432),
    ("Deployment/forest-mlops-airflow-dag-processor", "forest-mlops-minio", 9000),
    *(
        (f"task:{dag}", service, port)
        for dag in DAGS
        for service, port in (
            ("forest-mlops-airflow-api-server", 8080),  # execution API
            ("forest-mlops-mysql", 3306),  # train_data
            ("forest-mlops-minio", 9000),  # task logs
        )
    ),
    ("task:forest_cover_model_training", "forest-mlops-mlflow", 5000),
    ("task:forest_cover_data_extraction", "forest-mlops-mlflow", 5000),  # champion batch score
    ("task:forest_cover_data_extraction", "forest-mlops-api-data", 8000),
    ("CronJob/forest-mlops-retrain", "forest-mlops-mysql", 3306),
    ("CronJob/forest-mlops-retrain", "forest-mlops-mlflow", 5000),
    # `make load`'s Locust Job (forest_mlops/load/job.py) posting to /predict
    ("Job/forest-mlops-load-test", "forest-mlops-inference", 8001),
    # Prometheus' scrapes of /metrics: every inference replica, the data API, MLflow's sidecar,
    # its two exporters
    ("Deployment/forest-mlops-prometheus", "forest-mlops-inference-headless", 8001),
    ("Deployment/forest-mlops-prometheus", "forest-mlops-api-data", 8000),
    ("Deployment/forest-mlops-prometheus", "forest-mlops-mlflow-metrics", 9102),
    ("Deployment/forest-mlops-prometheus", "forest-mlops-statsd-exporter", 9102),
    ("Deployment/forest-mlops-prometheus", "forest-mlops-kube-state-metrics", 8080),
    # Perses' datasource proxy (its provisioned Datasource) running the dashboards' queries
    ("Deployment/forest-mlops-perses", "forest-mlops-prometheus", 9090),
}
PROMETHEUS = "Deployment/forest-mlops-prometheus"
KUBE_STATE_METRICS = "Deployment/forest-mlops-kube-state-metrics"
STATSD_EXPORTER = "Deployment/forest-mlops-statsd-exporter"
PERSES = "Deployment/forest-mlops-perses"
LOAD_JOB = "Job/forest-mlops-load-test"

URL = re.compile(r"[a-z][a-z0-9+.-]*://(?:[^@/\s\"']*@)?([A-Za-z0-9.-]+):(\d+)")


class Platform:
    """The render, its policies, every source pod with its containers, and the Services."""

    def __init__(self, docs: list[dict[str, Any]], executor: dict[str, dict[str, str]]) -> None:
        self.docs = docs
        # k8s/'s retraining CronJob and `make load`'s Job: the release's pods the chart does not
        # render.
        self.retrain = [
            *retrain_objects(),
            load_job.load_job(
                name="forest-mlops-load-test", namespace=NAMESPACE, release=RELEASE,
                image="forest-mlops/load:test", rate=20, duration_s=60,
            ),
        ]  # fmt: skip
        self.policies = policies_of([*docs, *self.retrain])
        self.sources: list[tuple[Pod, list[dict[str, Any]]]] = []
        # a container (by id) -> the ConfigMaps its pod mounts into it (scrape configurations)
        self.mounted: dict[int, list[str]] = {}
        for obj in [*docs, *self.retrain]:
            if obj["kind"] in {*WORKLOADS, "CronJob"}:
                spec, _ = pod_spec_and_labels(obj)
                items = [*spec.get("initContainers", []), *spec.get("containers", [])]
                self.sources.append((pod_of(obj, namespace=NAMESPACE), items))
                maps = {
                    v["name"]: v["configMap"]["name"]
                    for v in spec.get("volumes", [])
                    if "configMap" in v
                }
                for item in items:
                    self.mounted[id(item)] = [
                        maps[m["name"]] for m in item.get("volumeMounts", []) if m["name"] in maps
                    ]
        template = task_pod_template(docs)
        for dag, labels in executor.items():
            pod = pod_of(template, labels, name=f"task:{dag}", namespace=NAMESPACE)
            self.sources.append((pod, template["spec"]["containers"]))

    def pod(self, name: str) -> Pod:
        (found,) = [pod for pod, _ in self.sources if pod.name == name]
        return found

    def service(self, host: str) -> dict[str, Any] | None:
        """The release's Service a host name means (short, .ns, .ns.svc[.cluster.local])."""
        name, _, rest = host.partition(".")
        if rest not in ("", NAMESPACE, f"{NAMESPACE}.svc", f"{NAMESPACE}.svc.cluster.local"):
            return None
        for doc in self.docs:
            if doc["kind"] == "Service" and doc["metadata"]["name"] == name:
                return doc
        return None

    def backend(self, service: dict[str, Any], port: int) -> tuple[Pod, int]:
        """The pod a Service sends `port` to, and the container port it lands on."""
        selector = service["spec"]["selector"]
        (pod,) = [
            pod
            for pod, _ in self.sources
            if selector.items() <= pod.labels.items() and not pod.name.startswith("task:")
        ]
        (entry,) = [p for p in service["spec"]["ports"] if p["port"] == port]
        target = entry.get("targetPort", port)
        return pod, pod.named_ports[target] if isinstance(target, str) else int(target)

    def dialled(self, item: dict[str, Any]) -> set[tuple[str, int]]:
        """(host, port) pairs a container is configured to connect to."""
        env = container_env(self.docs, item)
        texts = list(env.values())
        for source in item.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref:
                texts += [
                    str(v) for v in find(self.docs, "ConfigMap", ref["name"])["data"].values()
                ]
        argv = [expand_vars(str(a), env) for a in [*item.get("command", []), *item.get("args", [])]]
        found = {(host, int(port)) for text in texts + argv for host, port in URL.findall(text)}
        # `host port` argument pairs (MLflow's wait-for-database init container)
        found |= {(a, int(b)) for a, b in itertools.pairwise(argv) if b.isdigit()}
        return found | self.scraped(item)

    def scraped(self, item: dict[str, Any]) -> set[tuple[str, int]]:
        """(host, port) of the scrape targets in a prometheus.yml mounted into the container:
        static targets and the names of dns_sd_configs (each resolves to the pods); and of the
        URLs of Perses Datasources (datasource-*.yaml) it provisions."""
        found: set[tuple[str, int]] = set()
        for name in self.mounted.get(id(item), []):
            data = find(self.docs, "ConfigMap", name)["data"]
            # Perses' provisioned resources: a Datasource's proxy URL is a flow of the pod's.
            for key, content in data.items():
                if key.startswith("datasource-"):
                    found |= {(h, int(p)) for h, p in URL.findall(content)}
            text = data.get("prometheus.yml")
            if text is None:
                continue
            for job in yaml.safe_load(text)["scrape_configs"]:
                for static in job.get("static_configs", []):
                    for target in static["targets"]:
                        host, port = target.rsplit(":", 1)
                        found.add((host, int(port)))
                for dns in job.get("dns_sd_configs", []):
                    found |= {(host, int(dns["port"])) for host in dns["names"]}
        return found

    def flows(self) -> dict[tuple[str, str, int], tuple[Pod, Pod, int]]:
        """(source, Service, service port) -> (source pod, backend pod, container port)."""
        out = {}
        for pod, items in self.sources:
            for item in items:
                for host, port in self.dialled(item):
                    service = self.service(host)
                    if service is None:
                        continue
                    backend, target = self.backend(service, port)
                    out[(pod.name, service["metadata"]["name"], port)] = (pod, backend, target)
        return out


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    docs = render_chart(value_files=[KIND_VALUES], release=RELEASE, namespace=NAMESPACE)
    return Platform(docs, executor_labels(str(tmp_path_factory.mktemp("airflow-home"))))


class TestConfiguredFlows:
    def test_the_configured_flows_are_the_reviewed_table(self, platform):
        derived = {key for key in platform.flows() if key[:2] not in UNUSED}
        assert derived == FLOWS, (
            f"not in FLOWS: {sorted(derived - FLOWS)}; gone: {sorted(FLOWS - derived)}"
        )

    def test_every_flow_gets_through_egress_and_ingress(self, platform):
        for key, (src, dst, port) in platform.flows().items():
            if key[:2] in UNUSED:
                continue
            assert connects(platform.policies, src, dst, port), key

    def test_every_configured_but_unused_address_is_refused(self, platform):
        flows = platform.flows()
        unused = {key: value for key, value in flows.items() if key[:2] in UNUSED}
        assert {key[:2] for key in unused} == set(UNUSED), "an UNUSED entry names no flow"
        for key, (src, dst, port) in unused.items():
            assert not connects(platform.policies, src, dst, port), key


class TestScrapes:
    """Prometheus reaches the metrics port of what it scrapes and nothing else of the release;
    opening those ports to it opened them to no one else."""

    def test_the_scraper_reaches_each_target_and_nothing_else(self, platform):
        scraper = platform.pod(PROMETHEUS)
        targets = {
            (service, port): (dst, target)
            for (src, service, port), (_, dst, target) in platform.flows().items()
            if src == PROMETHEUS
        }
        assert set(targets) == {
            ("forest-mlops-inference-headless", 8001),
            ("forest-mlops-api-data", 8000),
            ("forest-mlops-mlflow-metrics", 9102),
            ("forest-mlops-statsd-exporter", 9102),
            ("forest-mlops-kube-state-metrics", 8080),
        }
        for dst, port in targets.values():
            assert connects(platform.policies, scraper, dst, port), dst.name
            assert not connects(platform.policies, scraper, dst, port + 1), dst.name
        for name, port in probes.GUARDED.items():
            if (f"{RELEASE}-{name}", port) in targets:  # scraped: the data API, MLflow's sidecar
                continue
            dst, target = platform.backend(platform.service(f"{RELEASE}-{name}"), port)
            assert not connects(platform.policies, scraper, dst, target), name
        assert not connects(platform.policies, scraper, INTERNET, 443)

    def test_the_metrics_ports_admit_no_one_new(self, platform):
        """The data API's port (its /metrics) admits Prometheus, not a pod that only looks like
        it (another release's), nor a stranger or an unlabelled release pod; Prometheus' own
        port admits the release's Perses alone (its datasource proxy), not a Perses look-alike
        of another release."""
        api_data, _ = platform.backend(platform.service(f"{RELEASE}-api-data"), 8000)
        prometheus, _ = platform.backend(platform.service(f"{RELEASE}-prometheus"), 9090)
        lookalike = Pod("lookalike", platform.pod(PROMETHEUS).labels
                        | {"app.kubernetes.io/instance": "other"}, namespace=NAMESPACE)  # fmt: skip
        outsiders = [
            lookalike,
            Pod("stranger", probes.stranger_labels(), namespace=NAMESPACE),
            Pod("release-pod", probes.release_pod_labels(RELEASE), namespace=NAMESPACE),
        ]
        for pod in outsiders:
            assert not connects(platform.policies, pod, api_data, 8000), pod.name
        for pod, _ in platform.sources:
            allowed = pod.name == PERSES
            assert connects(platform.policies, pod, prometheus, 9090) == allowed, pod.name
        other = platform.pod(PERSES).labels | {"app.kubernetes.io/instance": "other"}
        perses_lookalike = Pod("perses-lookalike", other, namespace=NAMESPACE)
        for pod in [perses_lookalike, *outsiders]:
            assert not connects(platform.policies, pod, prometheus, 9090), pod.name


class TestPerses:
    """Perses (the dashboards UI) reaches Prometheus' 9090 and nothing else; its own port admits
    no pod (port-forward only: it has no login, and its proxy would open Prometheus' API)."""

    def test_perses_reaches_prometheus_only(self, platform):
        perses = platform.pod(PERSES)
        prometheus, target = platform.backend(platform.service(f"{RELEASE}-prometheus"), 9090)
        assert connects(platform.policies, perses, prometheus, target)
        assert not connects(platform.policies, perses, prometheus, target + 1)
        for name, port in probes.GUARDED.items():
            if name == "prometheus":
                continue
            dst, target = platform.backend(platform.service(f"{RELEASE}-{name}"), port)
            assert not connects(platform.policies, perses, dst, target), name
        assert not connects(platform.policies, perses, INTERNET, 443)
        assert not connects(platform.policies, perses, API_SERVER, 6443)

    def test_perses_port_admits_no_pod(self, platform):
        perses, target = platform.backend(platform.service(f"{RELEASE}-perses"), 8080)
        assert target == 8080
        strangers = [
            Pod("stranger", probes.stranger_labels(), namespace=NAMESPACE),
            Pod("release-pod", probes.release_pod_labels(RELEASE), namespace=NAMESPACE),
        ]
        for pod in [*(pod for pod, _ in platform.sources), *strangers]:
            assert not connects(platform.policies, pod, perses, 8080), pod.name


class TestStatsd:
    """Airflow's StatsD lines (UDP 9125, named in airflow.cfg, which no env search sees): every
    Airflow pod, task pods of every DAG included, reaches the exporter; nothing else may send
    it lines, and its metrics port answers Prometheus alone."""

    def exporter(self, platform: Platform, port: int) -> tuple[Pod, int]:
        return platform.backend(platform.service(f"{RELEASE}-statsd-exporter"), port)

    def test_every_airflow_pod_sends_to_the_exporter(self, platform):
        exporter, target = self.exporter(platform, 9125)
        senders = [
            pod
            for pod, _ in platform.sources
            if pod.labels.get("app.kubernetes.io/name") == "airflow"
        ]
        assert {pod.name for pod in senders} >= {
            "Deployment/forest-mlops-airflow-scheduler",
            "Deployment/forest-mlops-airflow-api-server",
            "Deployment/forest-mlops-airflow-dag-processor",
            *(f"task:{dag}" for dag in DAGS),
        }
        for pod in senders:
            assert connects(platform.policies, pod, exporter, target, "UDP"), pod.name
            assert not connects(platform.policies, pod, exporter, target, "TCP"), pod.name
            assert not connects(platform.policies, pod, exporter, 9102), pod.name

    def test_nothing_else_sends_or_reads(self, platform):
        exporter, target = self.exporter(platform, 9125)
        others = [
            pod
            for pod, _ in platform.sources
            if pod.labels.get("app.kubernetes.io/name") != "airflow"
        ]
        others += [
            Pod("stranger", probes.stranger_labels(), namespace=NAMESPACE),
            Pod("release-pod", probes.release_pod_labels(RELEASE), namespace=NAMESPACE),
            Pod("other-airflow", {"app.kubernetes.io/name": "airflow",
                                  "app.kubernetes.io/instance": "other"}, namespace=NAMESPACE),
        ]  # fmt: skip
        for pod in others:
            assert not connects(platform.policies, pod, exporter, target, "UDP"), pod.name
            if pod.name != PROMETHEUS:
                assert not connects(platform.policies, pod, exporter, 9102), pod.name

    def test_kube_state_metrics_answers_prometheus_alone(self, platform):
        ksm, target = platform.backend(platform.service(f"{RELEASE}-kube-state-metrics"), 8080)
        for pod, _ in platform.sources:
            allowed = connects(platform.policies, pod, ksm, target)
            assert allowed == (pod.name == PROMETHEUS), pod.name
            assert not connects(platform.policies, pod, ksm, 8081), pod.name  # its telemetry
        ksm_pod = platform.pod(KUBE_STATE_METRICS)
        assert not connects(platform.policies, ksm_pod, INTERNET, 443)


class TestLoadJob:
    """`make load`'s Job reaches inference's port through its client label, and nothing else of
    the release; the label opens that port to no pod that lacks it."""

    def test_the_load_job_reaches_inference_and_nothing_else(self, platform):
        load = platform.pod(LOAD_JOB)
        inference, port = platform.backend(platform.service(f"{RELEASE}-inference"), 8001)
        assert connects(platform.policies, load, inference, port)
        assert not connects(platform.policies, load, inference, port + 1)
        for name, target in probes.GUARDED.items():
            dst, target = platform.backend(platform.service(f"{RELEASE}-{name}"), target)
            assert not connects(platform.policies, load, dst, target), name
        assert not connects(platform.policies, load, INTERNET, 443)

    def test_only_the_load_job_gains_egress_to_inference(self, platform):
        inference, port = platform.backend(platform.service(f"{RELEASE}-inference"), 8001)
        reach = {
            pod.name
            for pod, _ in platform.sources
            if connects(platform.policies, pod, inference, port)
        }
        # Prometheus scrapes the same port (R-prometheus-scrape-egress).
        assert reach == {LOAD_JOB, PROMETHEUS}
        unlabelled = Pod("release-pod", probes.release_pod_labels(RELEASE), namespace=NAMESPACE)
        assert not connects(platform.policies, unlabelled, inference, port)
        other = Pod("other-release", platform.pod(LOAD_JOB).labels
                    | {"app.kubernetes.io/instance": "other"}, namespace=NAMESPACE)  # fmt: skip
        assert not selecting(platform.policies, other, "Egress"), "not this release's client"

    def test_without_inference_no_policy_admits_the_label(self):
        docs = render_chart(
            {"inference": {"enabled": False}, "prometheus": {"scrape": {"inference": False}}},
            value_files=[KIND_VALUES], release=RELEASE, namespace=NAMESPACE,
        )  # fmt: skip
        names = {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"}
        assert f"{RELEASE}-inference-clients-egress" not in names


class TestUnconfiguredFlows:
    """What no env names: DNS for everyone, the Kubernetes API for the two pods that hold a
    token, nothing else out of the cluster."""

    def test_every_release_pod_is_under_default_deny_egress(self, platform):
        default = find(platform.docs, "NetworkPolicy", f"{RELEASE}-default-egress")
        for pod, _ in platform.sources:
            assert default in selecting(platform.policies, pod, "Egress"), pod.name

    def test_every_pod_resolves_names(self, platform):
        for pod, _ in platform.sources:
            for protocol in ("UDP", "TCP"):
                assert connects(platform.policies, pod, COREDNS, 53, protocol), pod.name
            assert not connects(platform.policies, pod, COREDNS, 9153), pod.name  # metrics
            elsewhere = Pod("dns-elsewhere", {"k8s-app": "kube-dns"}, namespace="other")
            assert not connects(platform.policies, pod, elsewhere, 53, "UDP"), pod.name

    def test_only_the_scheduler_the_api_server_and_kube_state_metrics_reach_the_api(self, platform):
        reach = {
            pod.name
            for pod, _ in platform.sources
            if connects(platform.policies, pod, API_SERVER, 6443)
        }
        assert reach == {
            "Deployment/forest-mlops-airflow-scheduler",
            "Deployment/forest-mlops-airflow-api-server",
            KUBE_STATE_METRICS,
        }
        # They mount a token; nothing else does (tests/security: only they call the API).
        for name in reach:
            spec, _ = pod_spec_and_labels(
                find(platform.docs, "Deployment", name.removeprefix("Deployment/"))
            )
            assert spec.get("automountServiceAccountToken", True) is not False, name
        scheduler = platform.pod("Deployment/forest-mlops-airflow-scheduler")
        assert not connects(platform.policies, scheduler, API_SERVER, 443)
        assert not connects(platform.policies, scheduler, API_SERVER, 10250)  # kubelets

    def test_nothing_reaches_the_internet_by_default(self, platform):
        for pod, _ in platform.sources:
            for port in (80, 443):
                assert not connects(platform.policies, pod, INTERNET, port), pod.name


class TestE2eProbes:
    """The expectations of tests/e2e's network check (the same probe labels, tests/e2e/probes.py)
    against the rendered policies, and how that check fails on a chart without them."""

    def targets(self, platform: Platform) -> dict[str, tuple[Pod | External, int]]:
        out: dict[str, tuple[Pod | External, int]] = {}
        for name, port in {**probes.GUARDED, **probes.OPEN}.items():
            service = platform.service(f"{RELEASE}-{name}")
            assert service is not None, name
            out[name] = platform.backend(service, port)
        out["kubernetes-api"] = (API_SERVER, 6443)
        return out

    def outcomes(self, platform: Platform, labels: dict[str, str]) -> dict[str, bool]:
        probe = Pod("probe", labels, namespace=NAMESPACE)
        return {
            name: connects(platform.policies, probe, dst, port)
            for name, (dst, port) in self.targets(platform).items()
        }

    def test_a_stranger_reaches_only_inference_and_the_kubernetes_api(self, platform):
        reached = self.outcomes(platform, probes.stranger_labels())
        assert {n for n, ok in reached.items() if ok} == {"inference", "kubernetes-api"}

    def test_a_labelled_client_reaches_exactly_its_servers(self, platform):
        reached = self.outcomes(platform, probes.client_labels(RELEASE))
        assert {n for n, ok in reached.items() if ok} == set(probes.CLIENT_REACHES)

    def test_a_release_pod_without_client_labels_reaches_nothing(self, platform):
        reached = self.outcomes(platform, probes.release_pod_labels(RELEASE))
        assert not any(reached.values()), reached

    def test_without_policies_the_stranger_gets_in(self):
        """The chart rendered without its policy templates (networkPolicies.enabled and the
        Airflow subchart's networkPolicy.enabled off): the e2e stranger would connect to every
        guarded server, so the e2e check fails there."""
        docs = render_chart(
            {"networkPolicies": {"enabled": False},
             "airflow": {"networkPolicy": {"enabled": False}}},
            value_files=[KIND_VALUES], release=RELEASE, namespace=NAMESPACE,
        )  # fmt: skip
        open_platform = Platform(docs, {})
        # only k8s/'s retraining policy (no ingress for the retraining pods) is left
        assert [p["metadata"]["name"] for p in open_platform.policies] == [f"{RELEASE}-retrain"]
        reached = self.outcomes(open_platform, probes.stranger_labels())
        assert all(reached.values()), reached

    def test_without_egress_policies_a_release_pod_reaches_inference(self):
        """networkPolicies.egress.enabled=false (a CNI without egress support): the ingress
        policies stay, the release's pods may call out anywhere again."""
        docs = render_chart(
            {"networkPolicies": {"egress": {"enabled": False}}},
            value_files=[KIND_VALUES], release=RELEASE, namespace=NAMESPACE,
        )  # fmt: skip
        no_egress = Platform(docs, {})
        assert not any("Egress" in p["spec"]["policyTypes"] for p in no_egress.policies)
        reached = self.outcomes(no_egress, probes.release_pod_labels(RELEASE))
        assert {n for n, ok in reached.items() if ok} == {"inference", "kubernetes-api"}


def np_values(**egress: Any) -> dict[str, Any]:
    return {"networkPolicies": {"egress": egress}}


class TestEgressValues:
    def test_the_kubernetes_api_endpoints_are_a_value(self):
        (policy,) = render_chart(
            np_values(kubernetesApi={"cidrs": ["10.0.0.1/32", "10.0.0.2/32"], "ports": [443]}),
            show_only=[
                "templates/networkpolicies/airflow-kubernetes-api-egress-networkpolicy.yaml"
            ],
        )
        assert policy["spec"]["egress"] == [
            {
                "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "10.0.0.2/32"}}],
                "ports": [{"port": 443, "protocol": "TCP"}],
            }
        ]

    def test_the_dns_pods_are_a_value_and_extra_rules_are_added(self):
        extra = {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"port": 5432}]}
        (policy,) = render_chart(
            np_values(
                # Helm merges maps with the defaults: null drops a default label.
                dns={
                    "namespaceLabels": {"team": "dns", "kubernetes.io/metadata.name": None},
                    "podLabels": {"app": "unbound", "k8s-app": None},
                },
                extraRules=[extra],
            ),
            show_only=["templates/networkpolicies/default-egress-networkpolicy.yaml"],
        )
        dns, added = policy["spec"]["egress"]
        assert dns["to"] == [
            {
                "namespaceSelector": {"matchLabels": {"team": "dns"}},
                "podSelector": {"matchLabels": {"app": "unbound"}},
            }
        ]
        assert added == extra
        assert policy["spec"]["podSelector"] == {
            "matchLabels": {"app.kubernetes.io/instance": "fm"}
        }

    def test_the_dataset_download_lets_only_the_data_api_out_on_https(self):
        docs = render_chart(
            {"api-data": {"dataset": {"fetch": {"enabled": True}}}},
            value_files=[KIND_VALUES], release=RELEASE, namespace=NAMESPACE,
        )  # fmt: skip
        fetching = Platform(docs, {})
        reach = {
            pod.name
            for pod, _ in fetching.sources
            if connects(fetching.policies, pod, INTERNET, 443)
        }
        assert reach == {"Deployment/forest-mlops-api-data"}
        api_data = fetching.pod("Deployment/forest-mlops-api-data")
        assert not connects(fetching.policies, api_data, INTERNET, 80)

    def test_egress_off_renders_no_egress_policy(self):
        docs = render_chart({"networkPolicies": {"egress": {"enabled": False}}})
        kinds = [d["spec"]["policyTypes"] for d in docs if d["kind"] == "NetworkPolicy"]
        assert kinds and all(k == ["Ingress"] for k in kinds)
