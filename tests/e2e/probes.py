"""Throwaway pods for make e2e's network and admission checks (tests/e2e/test_kind.py): their
manifests, the labels that make them a stranger, a client or a release pod, and the connect
script they run. Plain functions, so the chart tests can evaluate the rendered NetworkPolicies
against the very same labels (tests/charts/test_network_flows.py).
"""

from __future__ import annotations

import json
from typing import Any

# Labels every probe carries: its own name, so no Service, ReplicaSet or StatefulSet of the
# release selects it (their selectors all name their component) and no check that lists the
# release's pods by component sees it.
PROBE_LABELS = {
    "app.kubernetes.io/name": "e2e-probe",
    "app.kubernetes.io/part-of": "forest-mlops-e2e",
}
# The client labels the servers' ingress policies admit and the egress policies let out.
CLIENT_LABELS = {
    "forest-mlops/db-client": "true",
    "forest-mlops/s3-client": "true",
    "forest-mlops/mlflow-client": "true",
}


def stranger_labels() -> dict[str, str]:
    """A pod of the namespace that is neither the release's nor any server's client."""
    return dict(PROBE_LABELS)


def client_labels(release: str) -> dict[str, str]:
    """A release pod labelled as a client of MySQL, the object store and MLflow: let out by the
    release's egress policies and in by those servers' ingress policies."""
    return {**PROBE_LABELS, "app.kubernetes.io/instance": release, **CLIENT_LABELS}


def release_pod_labels(release: str) -> dict[str, str]:
    """A release pod without client labels: under the release's default-deny egress."""
    return {**PROBE_LABELS, "app.kubernetes.io/instance": release}


# Servers only their clients may reach: (Service suffix after `<release>-`, port). The
# PostgreSQL Service is Airflow's metadata DB; minio is the object store (the S3 stand-in
# offline).
GUARDED = {
    "mysql": 3306,
    "postgresql": 5432,
    "mlflow": 5000,
    "minio": 9000,
    "airflow-api-server": 8080,
    "api-data": 8000,
    # MLflow's metrics sidecar (headless Service): the release's Prometheus alone.
    "mlflow-metrics": 9102,
    # The release's Perses alone (its datasource proxy); people use port-forward (no policy
    # filters that).
    "prometheus": 9090,
}
# Open to any source (the public prediction service): what a stranger reaches.
OPEN = {"inference": 8001}
# What the client probe's labels grant (CLIENT_LABELS).
CLIENT_REACHES = ("mysql", "minio", "mlflow")

# Run in a probe by `kubectl exec ... python -c CONNECT host:port ...`: one TCP connect per
# target, printed as JSON {target: outcome}. `open` is a completed handshake; a NetworkPolicy
# block shows as `refused` (kube-router answers REJECT) or `timeout` (a CNI that drops);
# `dns` means the name did not resolve, which is a broken check, never a blocked flow.
CONNECT = """
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4]
    except OSError as exc:
        out[target] = "dns"
        continue
    try:
        socket.create_connection(address[:2], timeout=5).close()
        out[target] = "open"
    except socket.timeout:
        out[target] = "timeout"
    except ConnectionRefusedError:
        out[target] = "refused"
    except OSError as exc:
        out[target] = "unreachable: " + str(exc)
print(json.dumps(out))
"""
BLOCKED = ("refused", "timeout", "unreachable")


def blocked(outcome: str) -> bool:
    return outcome.startswith(BLOCKED)


def probe_pod(name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    """A pod that meets Pod Security `restricted` and only sleeps (the checks exec into it).
    Its image is one the platform already runs (so nothing new is pulled from outside), with
    that image's non-root user; PID 1 ignores SIGTERM, hence the 1-second grace."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "import time; time.sleep(1800)"],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def privileged_pod(name: str, image: str) -> dict[str, Any]:
    """The restricted probe with one change: a privileged container (what admission refuses)."""
    pod = probe_pod(name, image, stranger_labels())
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return pod


def manifest(pod: dict[str, Any]) -> str:
    return json.dumps(pod)


# --- who holds the object store's root keys ------------------------------------------------


def root_key_holders(
    pods: list[dict[str, Any]], secret: str, keys: tuple[str, ...] = ("root-user", "root-password")
) -> dict[str, list[str]]:
    """Pod (or pod template) name -> the containers that get a root key of the object store's
    Secret, by env secretKeyRef, envFrom secretRef or a secret volume they mount. `pods` are
    pod objects as the API returns them (or a workload's template wrapped as one)."""
    holders: dict[str, list[str]] = {}
    for pod in pods:
        spec = pod["spec"]
        secret_volumes = {
            v["name"]
            for v in spec.get("volumes", [])
            if v.get("secret", {}).get("secretName") == secret
        }
        for item in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            by_env = any(
                (ref := var.get("valueFrom", {}).get("secretKeyRef"))
                and ref.get("name") == secret
                and ref.get("key") in keys
                for var in item.get("env", [])
            )
            by_env_from = any(
                source.get("secretRef", {}).get("name") == secret
                for source in item.get("envFrom", [])
            )
            by_volume = any(m["name"] in secret_volumes for m in item.get("volumeMounts", []))
            if by_env or by_env_from or by_volume:
                holders.setdefault(pod["metadata"]["name"], []).append(item["name"])
    return holders


def may_hold_root_keys(labels: dict[str, str]) -> bool:
    """The object store itself and its bucket bootstrap Job: nothing else needs the root keys."""
    return labels.get("app.kubernetes.io/name") == "minio" and labels.get(
        "app.kubernetes.io/component"
    ) in ("object-storage", "bucket-setup")
