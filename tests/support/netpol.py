"""NetworkPolicy semantics over rendered objects, for the chart tests: which policies select a
pod, and whether a connection from one pod to another (or to an address outside the cluster)
is let out by the source's egress policies and in by the destination's ingress policies, as
the Kubernetes API documents them (policies add up; a pod no policy of a type selects is open
in that direction; a rule without `to`/`from` or `ports` matches every peer or port).

Simplifications, none of which the chart relies on: one namespace for every pod of the
release (other namespaces only through a rule's namespaceSelector), ipBlock peers match only
addresses outside the cluster (`External`), and SCTP is not modelled.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.support.helm import REPO_ROOT, tool

NAMESPACE = "forest"


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its labels, namespace (and that namespace's labels), and the
    named ports of its containers (for rules that name a port)."""

    name: str
    labels: dict[str, str]
    namespace: str = NAMESPACE
    namespace_labels: dict[str, str] = field(default_factory=dict)
    named_ports: dict[str, int] = field(default_factory=dict)

    def ns_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


@dataclass(frozen=True)
class External:
    """An address outside the pod network (the API server's endpoint, a host on the internet)."""

    address: str


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and In/NotIn/Exists/DoesNotExist) as Kubernetes evaluates
    it; an empty selector matches everything."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def selecting(policies: list[dict[str, Any]], pod: Pod, kind: str) -> list[dict[str, Any]]:
    """The policies of type `kind` (Ingress/Egress) that select `pod`."""
    return [
        p
        for p in policies
        if p["metadata"].get("namespace", NAMESPACE) == pod.namespace
        and kind in policy_types(p)
        and matches(p["spec"].get("podSelector", {}), pod.labels)
    ]


def _peer_matches(peer: dict[str, Any], policy_ns: str, other: Pod | External) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, External):
            return False
        address = ipaddress.ip_address(other.address)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if isinstance(other, External):
        return False
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], other.ns_labels()):
            return False
    elif other.namespace != policy_ns:
        return False
    return matches(peer.get("podSelector", {}), other.labels)


def _port_matches(rule: dict[str, Any], dst: Pod | External, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        wanted = item.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            wanted = dst.named_ports.get(wanted) if isinstance(dst, Pod) else None
        if wanted is not None and (wanted <= port <= item.get("endPort", wanted)):
            return True
    return False


def egress_allowed(
    policies: list[dict[str, Any]], src: Pod, dst: Pod | External, port: int, protocol: str = "TCP"
) -> bool:
    chosen = selecting(policies, src, "Egress")
    if not chosen:
        return True
    return any(
        _port_matches(rule, dst, port, protocol)
        and (
            not rule.get("to")
            or any(_peer_matches(peer, p["metadata"]["namespace"], dst) for peer in rule["to"])
        )
        for p in chosen
        for rule in p["spec"].get("egress", [])
    )


def ingress_allowed(
    policies: list[dict[str, Any]], src: Pod, dst: Pod, port: int, protocol: str = "TCP"
) -> bool:
    chosen = selecting(policies, dst, "Ingress")
    if not chosen:
        return True
    return any(
        _port_matches(rule, dst, port, protocol)
        and (
            not rule.get("from")
            or any(_peer_matches(peer, p["metadata"]["namespace"], src) for peer in rule["from"])
        )
        for p in chosen
        for rule in p["spec"].get("ingress", [])
    )


def connects(
    policies: list[dict[str, Any]], src: Pod, dst: Pod | External, port: int, protocol: str = "TCP"
) -> bool:
    """Whether a connection from src to dst:port gets through both ends' policies (a
    destination outside the cluster has no ingress policy of ours)."""
    if not egress_allowed(policies, src, dst, port, protocol):
        return False
    return isinstance(dst, External) or ingress_allowed(policies, src, dst, port, protocol)


# --- the pods of a render --------------------------------------------------------------------

WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob"}


def pod_spec_and_labels(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    if obj["kind"] == "Pod":
        return obj["spec"], dict(obj["metadata"].get("labels", {}))
    template = (
        obj["spec"]["jobTemplate"]["spec"]["template"]
        if obj["kind"] == "CronJob"
        else obj["spec"]["template"]
    )
    return template["spec"], dict(template["metadata"]["labels"])


def pod_of(
    obj: dict[str, Any],
    extra_labels: dict[str, str] | None = None,
    *,
    name: str | None = None,
    namespace: str = NAMESPACE,
) -> Pod:
    """The pod a workload (or a Pod object) runs, as policies see it."""
    spec, labels = pod_spec_and_labels(obj)
    named = {
        port["name"]: int(port["containerPort"])
        for item in [*spec.get("initContainers", []), *spec.get("containers", [])]
        for port in item.get("ports", [])
        if "name" in port
    }
    return Pod(name or f"{obj['kind']}/{obj['metadata']['name']}", labels | (extra_labels or {}),
               namespace=namespace, named_ports=named)  # fmt: skip


def policies_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == "NetworkPolicy"]


def task_pod_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Airflow task pod of the rendered pod template ConfigMap."""
    (cm,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-airflow-pod-template")
    ]
    (text,) = cm["data"].values()
    pod: dict[str, Any] = yaml.safe_load(text)
    return pod


# The labels the KubernetesExecutor adds to a task pod, from Airflow's own code
# (PodGenerator.build_labels_for_k8s_executor_pod), run in a process of its own with a scratch
# AIRFLOW_HOME (Airflow reads its configuration at import).
EXECUTOR_LABELS = """
import json, sys
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
print(json.dumps({dag_id: PodGenerator.build_labels_for_k8s_executor_pod(
    dag_id=dag_id, task_id="a_task", try_number=1, airflow_worker="1",
    run_id="scheduled__2026-12-05T06:00:00+00:00") for dag_id in sys.argv[1:]}))
"""
DAGS = ("forest_cover_model_training", "forest_cover_data_extraction")


def executor_labels(home: str, dag_ids: tuple[str, ...] = DAGS) -> dict[str, dict[str, str]]:
    """dag_id -> the labels Airflow's KubernetesExecutor puts on that DAG's task pods."""
    import json

    proc = subprocess.run(
        [sys.executable, "-c", EXECUTOR_LABELS, *dag_ids],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "AIRFLOW_HOME": home,
             "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
             "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels: dict[str, dict[str, str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return labels


def retrain_objects() -> list[dict[str, Any]]:
    """k8s/ as kustomize builds it (the retraining CronJob and its NetworkPolicy)."""
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(REPO_ROOT / "k8s")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]
