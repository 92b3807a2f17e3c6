"""Start a retraining Job from the retraining CronJob and report how it ends.

The CronJob (k8s/retrain-cronjob.yaml) is the single description of a retraining run: image,
command, env, Secrets, limits. A manual run is a Job copied from its jobTemplate exactly the way
`kubectl create job --from=cronjob/NAME` does it (same annotation, a controller ownerReference),
so manual and scheduled runs cannot drift apart and `kubectl get jobs` shows which was which.

`job_from_cronjob` is a pure function; the rest talks to the API server through the official
kubernetes client and takes the API objects as arguments.
"""

from __future__ import annotations

import codecs
import copy
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
# Label every retraining CronJob carries (k8s/); used when no name is given.
RETRAIN_SELECTOR = "app.kubernetes.io/part-of=forest-mlops,app.kubernetes.io/component=retrain"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
DEFAULT_NAMESPACE = "forest-mlops"
_MAX_NAME = 63  # the job-name label value is limited to 63 characters

_IMAGE_HINT = (
    "the nodes cannot pull the image: `skaffold run --default-repo=localhost:5001` pushes it to "
    "the kind cluster's registry (make cluster starts it), or `docker push` it to a registry "
    "the nodes reach"
)
# Waiting reasons worth a hint, because they never resolve on their own.
_WAITING_HINTS = {
    "ErrImagePull": _IMAGE_HINT,
    "ImagePullBackOff": _IMAGE_HINT,
    "CreateContainerConfigError": "a Secret or ConfigMap the Job references is missing: "
    "is the chart installed in this namespace under the release name k8s/ expects?",
}


class RetrainError(RuntimeError):
    """The retraining Job could not be started or followed (not: the training failed)."""


@dataclass(frozen=True)
class JobResult:
    name: str
    succeeded: bool
    reason: str


def manual_job_name(cronjob_name: str, token: str | None = None) -> str:
    """`<cronjob>-manual-<8 hex>`, shortened so the name fits the 63-character label limit."""
    suffix = f"-manual-{token or secrets.token_hex(4)}"
    base = cronjob_name[: _MAX_NAME - len(suffix)].rstrip("-")
    return f"{base}{suffix}"


def job_from_cronjob(cronjob: Mapping[str, Any], job_name: str) -> dict[str, Any]:
    """The Job `kubectl create job JOB --from=cronjob/NAME` would create, as an API dict.

    `cronjob` is the CronJob as the API server returns it (camelCase keys, with a uid).
    """
    metadata = cronjob.get("metadata") or {}
    name, uid = metadata.get("name"), metadata.get("uid")
    if not name or not uid:
        raise RetrainError("the CronJob has no name or uid: read it from the API server first")
    try:
        template = cronjob["spec"]["jobTemplate"]
        spec = template["spec"]
    except (KeyError, TypeError) as exc:
        raise RetrainError(f"CronJob {name} has no spec.jobTemplate.spec") from exc
    template_meta = template.get("metadata") or {}
    job_metadata: dict[str, Any] = {
        "name": job_name,
        "labels": dict(template_meta.get("labels") or {}),
        "annotations": {
            **(template_meta.get("annotations") or {}),
            INSTANTIATE_ANNOTATION: "manual",
        },
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": name,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if metadata.get("namespace"):
        job_metadata["namespace"] = metadata["namespace"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_metadata,
        "spec": copy.deepcopy(spec),
    }


def job_result(job: Mapping[str, Any]) -> JobResult | None:
    """The terminal state of a Job dict, or None while it runs."""
    name = job["metadata"]["name"]
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobResult(name, True, "Complete")
        if condition.get("type") == "Failed":
            return JobResult(name, False, condition.get("reason") or "Failed")
    return None


class Retrainer:
    """The few API calls a manual retraining needs, over one kubernetes ApiClient."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        *,
        poll_interval: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.poll_interval = poll_interval
        self._sleep = sleep

    def _as_dict(self, obj: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)
        return data

    def find_cronjob(self, name: str | None = None) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        if name:
            try:
                return self._as_dict(self.batch.read_namespaced_cron_job(name, self.namespace))
            except ApiException as exc:
                if exc.status == 404:
                    raise RetrainError(
                        f"no CronJob {name} in namespace {self.namespace}: apply k8s/ "
                        "(`kubectl apply -k k8s/`, skaffold does it)"
                    ) from exc
                raise
        found = self.batch.list_namespaced_cron_job(self.namespace, label_selector=RETRAIN_SELECTOR)
        items = [self._as_dict(item) for item in found.items]
        if not items:
            raise RetrainError(
                f"no retraining CronJob ({RETRAIN_SELECTOR}) in namespace {self.namespace}: "
                "apply k8s/ (`kubectl apply -k k8s/`, skaffold does it) or pass --namespace"
            )
        if len(items) > 1:
            names = sorted(item["metadata"]["name"] for item in items)
            raise RetrainError(f"several retraining CronJobs {names}: choose one with --cronjob")
        return items[0]

    def start(self, cronjob: Mapping[str, Any]) -> str:
        body = job_from_cronjob(cronjob, manual_job_name(cronjob["metadata"]["name"]))
        created = self.batch.create_namespaced_job(self.namespace, body)
        name: str = created.metadata.name
        logger.info(
            "created Job %s/%s from CronJob %s", self.namespace, name, cronjob["metadata"]["name"]
        )
        return name

    def result(self, job_name: str) -> JobResult | None:
        return job_result(
            self._as_dict(self.batch.read_namespaced_job_status(job_name, self.namespace))
        )

    def wait(self, job_name: str, *, timeout: float) -> JobResult:
        deadline = time.monotonic() + timeout
        while (result := self.result(job_name)) is None:
            self._check_deadline(job_name, deadline)
            self._sleep(self.poll_interval)
        return result

    def follow(self, job_name: str, write: Callable[[str], None], *, timeout: float) -> JobResult:
        """Stream the logs of each of the Job's pods (retries included) until the Job ends."""
        deadline = time.monotonic() + timeout
        followed: set[str] = set()
        warned: set[tuple[str, str]] = set()
        while True:
            result = self.result(job_name)
            pods = self.core.list_namespaced_pod(
                self.namespace, label_selector=f"{JOB_NAME_LABEL}={job_name}"
            ).items
            pods.sort(
                key=lambda pod: (
                    pod.metadata.creation_timestamp is None,
                    pod.metadata.creation_timestamp,
                )
            )
            for pod in pods:
                pod_name = pod.metadata.name
                if pod_name in followed:
                    continue
                if (pod.status.phase or "Pending") == "Pending":
                    self._report_pending(pod, warned)
                    break
                self._stream_log(pod_name, write)
                followed.add(pod_name)
            # `result` was read before the pods were listed, so every pod that ran has been
            # streamed; a pod still pending when the Job ended (deadline) has nothing to show.
            if result is not None:
                return result
            self._check_deadline(job_name, deadline)
            self._sleep(self.poll_interval)

    def _stream_log(self, pod_name: str, write: Callable[[str], None]) -> None:
        response = self.core.read_namespaced_pod_log(
            pod_name, self.namespace, follow=True, _preload_content=False
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for chunk in response.stream(4096):
                write(decoder.decode(chunk))
            write(decoder.decode(b"", final=True))
        finally:
            response.release_conn()

    def _report_pending(self, pod: Any, warned: set[tuple[str, str]]) -> None:
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting if status.state else None
            if waiting is None or not waiting.reason:
                continue
            key = (pod.metadata.name, waiting.reason)
            if key in warned:
                continue
            warned.add(key)
            hint = _WAITING_HINTS.get(waiting.reason)
            logger.warning(
                "pod %s is waiting: %s %s%s",
                pod.metadata.name,
                waiting.reason,
                waiting.message or "",
                f" ({hint})" if hint else "",
            )
        for condition in pod.status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                key = (pod.metadata.name, "Unschedulable")
                if key not in warned:
                    warned.add(key)
                    logger.warning(
                        "pod %s cannot be scheduled: %s (see docs/KUBERNETES.md, pending pods)",
                        pod.metadata.name,
                        condition.message or condition.reason,
                    )

    def _check_deadline(self, job_name: str, deadline: float) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Job {job_name} has not finished; it keeps running in the cluster "
                f"(kubectl -n {self.namespace} get job {job_name})"
            )


def api_client(context: str | None = None) -> Any:
    """A kubernetes ApiClient from the kubeconfig (KUBECONFIG, ~/.kube/config) or in-cluster."""
    import os

    from kubernetes import client, config

    if (
        context is None
        and os.environ.get("KUBERNETES_SERVICE_HOST")
        and not (
            os.environ.get("KUBECONFIG") or os.path.exists(os.path.expanduser("~/.kube/config"))
        )
    ):
        config.load_incluster_config()
        return client.ApiClient()
    try:
        return config.new_client_from_config(context=context)
    except config.ConfigException as exc:
        raise RetrainError(f"no usable kubeconfig: {exc}") from exc
