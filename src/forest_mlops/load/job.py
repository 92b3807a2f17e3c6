"""The load test as a Kubernetes Job: create it next to the inference Service, follow it to its
end, read Locust's summary from its log, delete it.

`load_job` is a pure function (the manifest, tested against the chart's NetworkPolicies);
`run_load_job` talks to the API server through the official kubernetes client and returns the
record bench/results/load-cluster.json holds (summary.result). `run_load` does the same from a
kubeconfig context: the one call `make load` and the e2e test need.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from forest_mlops.load import summary
from forest_mlops.retrain import Retrainer, api_client

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = "kind-forest-mlops"
DEFAULT_RELEASE = DEFAULT_NAMESPACE = "forest-mlops"
INFERENCE_PORT = 8001
# Where images/load/Dockerfile puts the locustfile.
LOCUSTFILE = "/home/app/locustfile.py"
# The label R-inference-clients-egress lets out to inference (the chart's
# templates/networkpolicies/inference-clients-egress-networkpolicy.yaml); the release's default
# egress policy denies everything else but DNS to this pod.
CLIENT_LABEL = "forest-mlops/inference-client"
COMPONENT = "load-test"
# Locust's start (imports, spawning the users) and its shutdown, on top of the run time.
_SLACK_S = 120
STOP_TIMEOUT_S = 10
# Where Locust runs. "control-plane": on the control-plane node (kind, kubeadm), apart from the
# workers that run the platform and its training pods; "any": wherever the scheduler puts it (on
# kind, a worker: the control-plane node is tainted), for a cluster without a control-plane node.
#
# Apart, and with a core of its own, by default: since the service's histogram counts the wait
# before the service reads a request (inference_api.arrival), Locust's own waits are what stand
# between its p99 and the service's. The kind nodes are containers with equal CPU shares of the
# machine's cores, and a pod's request only orders it among the pods of its node, so Locust on a
# busy worker waits behind the pods there. With a spinning pod on each worker, Locust's p99 was
# 3.5-4.8 % above the service's when it asked for a core, on either node, and 9.5-10.3 % with
# 250m (bench/results/load-client-node.json). The control-plane node always has that core free;
# the workers, running training, may not.
CLIENT_NODES = ("control-plane", "any")
# Locust's single process uses about 1 ms of CPU a request (20 % of a core at 200 requests/s);
# the request is for its CPU shares on a busy node, not for its use: a whole core, its limit.
CLIENT_CPU_LIMIT = "1"
CLIENT_CPU_REQUEST = CLIENT_CPU_LIMIT
DEFAULT_CLIENT_NODE = "control-plane"
_CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"


class LoadJobError(RuntimeError):
    """The load Job could not be run or gave no summary (not: requests failed)."""


def job_name(token: str | None = None) -> str:
    return f"forest-mlops-load-{token or secrets.token_hex(4)}"


def locust_args(
    host: str, *, rate: float, duration_s: int, locustfile: str = LOCUSTFILE
) -> list[str]:
    """Locust's command line in the Job (after the image's `locust` entry point): headless
    against `host` for `duration_s` at `rate`. bench/load_floor.py and tests/load run the same
    arguments on this machine with the checkout's locustfile."""
    users = summary.users_for(rate)
    return [
        "-f", locustfile,
        "--headless",
        "--host", host,
        "--users", str(users),
        # All users at once: the rate is held from the first second.
        "--spawn-rate", str(users),
        "--run-time", f"{duration_s}s",
        "--target-rate", f"{rate:g}",
        # At the run time's end, requests in flight finish into the figures rather than being
        # killed: the service answers and counts them either way, so killed they made its count
        # exceed Locust's by as many as were in flight. 10 s bounds the wait (and any answer
        # slower than that is still cut off uncounted); the Job's slack covers it.
        "--stop-timeout", str(STOP_TIMEOUT_S),
        # Failed requests are a figure of the result, not a failure of the Job.
        "--exit-code-on-error", "0",
        "--only-summary",
        "--loglevel", "WARNING",
    ]  # fmt: skip


def load_job(
    *,
    name: str,
    namespace: str,
    release: str,
    image: str,
    rate: float,
    duration_s: int,
    client_node: str = DEFAULT_CLIENT_NODE,
    client_cpu: str = CLIENT_CPU_REQUEST,
) -> dict[str, Any]:
    """The Job: Locust headless against `<release>-inference:8001` for `duration_s` at `rate`,
    in the release's namespace (the Service's short name resolves there), on `client_node`
    (CLIENT_NODES), asking for `client_cpu`."""
    labels = {
        "app.kubernetes.io/name": "load",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": "forest-mlops",
    }
    args = locust_args(
        f"http://{release}-inference:{INFERENCE_PORT}", rate=rate, duration_s=duration_s
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                "checkov.io/skip1": "CKV_K8S_43=the image is built and pushed by make load "
                "(scripts/load/image.sh) under a tag that is its image id",
                "checkov.io/skip2": "CKV_K8S_8=a load test runs to completion; its pod phase "
                "is its health",
                "checkov.io/skip3": "CKV_K8S_9=a load test serves no traffic",
                "checkov.io/skip4": "CKV_K8S_15=the tag is the image id: IfNotPresent pulls "
                "each new build once",
            },
        },
        "spec": {
            # One attempt: a retry would add a second load window to the figures.
            "backoffLimit": 0,
            "activeDeadlineSeconds": duration_s + _SLACK_S,
            # run_load_job deletes it; this removes one left behind by an interrupted run.
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {**labels, CLIENT_LABEL: "true"}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "locust",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": args,
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {
                                "requests": {"cpu": client_cpu, "memory": "128Mi"},
                                "limits": {"cpu": CLIENT_CPU_LIMIT, "memory": "256Mi"},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    # Scratch space for Python and gevent on a read-only root.
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                    **placement(client_node),
                },
            },
        },
    }


def placement(client_node: str) -> dict[str, Any]:
    """The pod spec's nodeSelector and tolerations for `client_node` (CLIENT_NODES). Required,
    not preferred: a run that silently fell back to a busy worker would report other figures
    under the same name. Without a control-plane node the pod stays Pending and run_load_job's
    follow says why."""
    if client_node == "any":
        return {}
    if client_node == "control-plane":
        return {
            "nodeSelector": {_CONTROL_PLANE_ROLE: ""},
            "tolerations": [
                {"key": _CONTROL_PLANE_ROLE, "operator": "Exists", "effect": "NoSchedule"}
            ],
        }
    raise ValueError(f"client_node must be one of {CLIENT_NODES}, got {client_node!r}")


def run_load_job(
    api: Any,
    *,
    namespace: str,
    release: str,
    image: str,
    rate: float,
    duration_s: int,
    client_node: str = DEFAULT_CLIENT_NODE,
    client_cpu: str = CLIENT_CPU_REQUEST,
    keep: bool = False,
) -> dict[str, Any]:
    """Run the load Job to its end and return its record (summary.result); the Job is deleted
    afterwards unless `keep`. Raises LoadJobError when the log holds no summary."""
    from kubernetes import client

    name = job_name()
    body = load_job(
        name=name,
        namespace=namespace,
        release=release,
        image=image,
        rate=rate,
        duration_s=duration_s,
        client_node=client_node,
        client_cpu=client_cpu,
    )
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, body)
    logger.info("created Job %s/%s: %g requests/s for %d s", namespace, name, rate, duration_s)
    chunks: list[str] = []
    try:
        # Retrainer's follow is generic: any Job's pods' logs until it ends, with hints on
        # pods that cannot start (image pulls, scheduling).
        ended = Retrainer(api, namespace).follow(
            name, chunks.append, timeout=duration_s + _SLACK_S + 60
        )
    finally:
        if not keep:
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
    log = "".join(chunks)
    try:
        found = summary.parse_log(log)
    except summary.LoadSummaryError as exc:
        raise LoadJobError(f"Job {name} ended {ended.reason} without a summary: {exc}") from exc
    return summary.result(
        found,
        namespace=namespace,
        release=release,
        job=name,
        job_outcome=ended.reason,
        image=image,
        duration_s=duration_s,
        client_node=client_node,
        client_cpu=client_cpu,
    )


def run_load(
    *,
    image: str,
    rate: float = 20.0,
    duration_s: int = 60,
    context: str | None = DEFAULT_CONTEXT,
    namespace: str = DEFAULT_NAMESPACE,
    release: str = DEFAULT_RELEASE,
    client_node: str = DEFAULT_CLIENT_NODE,
    client_cpu: str = CLIENT_CPU_REQUEST,
    keep: bool = False,
) -> dict[str, Any]:
    """run_load_job through the kubeconfig's `context` (None: the current one)."""
    started = time.time()
    record = run_load_job(
        api_client(context),
        namespace=namespace,
        release=release,
        image=image,
        rate=rate,
        duration_s=duration_s,
        client_node=client_node,
        client_cpu=client_cpu,
        keep=keep,
    )
    record["context"] = context
    record["job_seconds"] = round(time.time() - started, 1)
    return record
