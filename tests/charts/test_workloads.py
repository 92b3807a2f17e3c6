"""Rules every workload of the chart keeps (Airflow's have their own tests): security contexts,
resources, probes, labels, pinned images, and every Secret/ConfigMap reference resolvable."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.charts.conftest import KIND_VALUES, WITHOUT_AIRFLOW
from tests.support.helm import container_env, pod_containers, render_chart

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob"}
LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
}
# Every optional container and object switched on.
ALL_OPTIONS: dict[str, Any] = WITHOUT_AIRFLOW | {
    "api-data": {"dataset": {"fetch": {"enabled": True}}, "restartToken": {"enabled": True}},
    "inference": {"autoscaling": {"enabled": True}},
}


@pytest.fixture(
    scope="module",
    params=["default", "kind", "all-options"],
)
def docs(request, platform_docs, kind_docs) -> list[dict[str, Any]]:
    if request.param == "default":
        return platform_docs
    if request.param == "kind":
        return kind_docs
    return render_chart(ALL_OPTIONS, value_files=[KIND_VALUES])


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]
    assert found
    return found


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def all_containers(docs):
    return [
        (f"{obj['kind']}/{obj['metadata']['name']}/{item['name']}", item)
        for obj in workloads(docs)
        for item in pod_containers(obj)
    ]


class TestPodSecurity:
    def test_pods_run_as_non_root_with_runtime_default_seccomp(self, docs):
        for obj in workloads(docs):
            context = pod_spec(obj)["securityContext"]
            assert context["runAsNonRoot"] is True, obj["metadata"]["name"]
            assert context["runAsUser"] > 0, obj["metadata"]["name"]
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}

    def test_pods_get_no_service_account_token(self, docs):
        # None of these programs talks to the Kubernetes API but kube-state-metrics, which
        # lists and watches the namespace (its Role: tests/charts/test_exporters.py).
        for obj in workloads(docs):
            expected = obj["metadata"]["name"] == "fm-kube-state-metrics"
            assert pod_spec(obj)["automountServiceAccountToken"] is expected

    def test_every_container_is_locked_down(self, docs):
        for name, item in all_containers(docs):
            context = item["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["readOnlyRootFilesystem"] is True, name

    def test_read_only_containers_get_a_writable_tmp_or_need_none(self, docs):
        # Containers that only run a tiny command (probe-credentials, wait-for-database) write
        # nowhere but their own mounts.
        exempt = {"probe-credentials", "wait-for-database"}
        for obj in workloads(docs):
            for item in pod_containers(obj):
                if item["name"] in exempt:
                    continue
                mounts = {m["mountPath"] for m in item.get("volumeMounts", [])}
                assert "/tmp" in mounts, f"{obj['metadata']['name']}/{item['name']}"


class TestResourcesAndProbes:
    def test_every_container_has_cpu_and_memory_requests_and_limits(self, docs):
        for name, item in all_containers(docs):
            for bound in ("requests", "limits"):
                assert set(item["resources"][bound]) >= {"cpu", "memory"}, f"{name} {bound}"

    def test_every_long_running_container_has_startup_liveness_and_readiness(self, docs):
        for obj in workloads(docs):
            if obj["kind"] not in {"Deployment", "StatefulSet"}:
                continue
            for item in pod_spec(obj)["containers"]:
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert probe in item, f"{obj['metadata']['name']}/{item['name']} {probe}"


class TestImagesAndLabels:
    def test_images_are_pinned_never_latest(self, docs):
        for name, item in all_containers(docs):
            repository, _, tag = item["image"].rpartition(":")
            assert repository and tag and tag != "latest", f"{name}: {item['image']}"
            assert "/" not in tag, f"{name}: {item['image']} has no tag"

    def test_objects_and_pods_carry_the_recommended_labels(self, docs):
        for obj in docs:
            assert set(obj["metadata"]["labels"]) >= LABELS, obj["metadata"]["name"]
            assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "forest-mlops"
        for obj in workloads(docs):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert set(labels) >= LABELS, obj["metadata"]["name"]

    def test_selectors_match_their_pod_labels(self, docs):
        for obj in workloads(docs):
            if obj["kind"] == "Job":
                continue
            selector = obj["spec"]["selector"]["matchLabels"]
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), obj["metadata"]["name"]

    def test_services_select_exactly_one_workload(self, docs):
        pods = [
            (obj["metadata"]["name"], obj["spec"]["template"]["metadata"]["labels"])
            for obj in workloads(docs)
        ]
        for svc in (doc for doc in docs if doc["kind"] == "Service"):
            matched = [
                name for name, labels in pods if svc["spec"]["selector"].items() <= labels.items()
            ]
            assert len(matched) == 1, (svc["metadata"]["name"], matched)


class TestReferences:
    def test_every_env_reference_resolves_to_a_rendered_key(self, docs):
        # container_env raises KeyError for a Secret, ConfigMap or key the chart does not render.
        for obj in workloads(docs):
            for item in pod_containers(obj):
                env = container_env(docs, item)
                unresolved = [v for v in env.values() if "$(" in v]
                assert unresolved == [], f"{obj['metadata']['name']}/{item['name']}"

    def test_no_password_is_written_in_a_pod_spec(self, docs):
        secrets = {
            value
            for doc in docs
            if doc["kind"] == "Secret"
            for value in doc.get("data", {}).values()
        }
        plain = {base64.b64decode(v).decode() for v in secrets}
        for obj in workloads(docs):
            text = repr(obj)
            assert not any(secret in text for secret in plain), obj["metadata"]["name"]

    def test_volumes_mounted_are_declared(self, docs):
        for obj in workloads(docs):
            declared = {v["name"] for v in pod_spec(obj).get("volumes", [])}
            declared |= {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
            for item in pod_containers(obj):
                for mount in item.get("volumeMounts", []):
                    assert mount["name"] in declared, f"{obj['metadata']['name']}/{item['name']}"
