"""Fixtures for the checks against the real kind cluster (make cluster, then make cluster-check).

Every test here is marked `cluster` and skipped, with the reason printed, when no cluster answers
(`make test` runs on machines without one) and when not run by `make cluster-check`, which
pushes their test image to the cluster's registry first: a cluster left from `make cluster`
must not fail `make test` (seen when a cluster came up while `make test` ran).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

CONTEXT = os.environ.get("FOREST_CLUSTER_CONTEXT", "kind-forest-mlops")
REGISTRY = os.environ.get("FOREST_CLUSTER_REGISTRY", "localhost:5001")
# In the cluster's registry (make cluster-check pushes it there): the nodes pull it.
TEST_IMAGE = os.environ.get(
    "FOREST_CLUSTER_TEST_IMAGE", f"{REGISTRY}/forest-mlops-local/busybox:1.35.0"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs the running kind cluster (make cluster)")


def find_kubectl() -> str | None:
    """The toolchain's kubectl (make cluster-check passes it), else a cached one, else PATH's."""
    if os.environ.get("FOREST_CLUSTER_KUBECTL"):
        return os.environ["FOREST_CLUSTER_KUBECTL"]
    cached = sorted(glob.glob("/var/cache/forest-mlops/cluster-*/bin/kubectl"))
    return cached[-1] if cached else shutil.which("kubectl")


@dataclass
class Kube:
    """kubectl against the cluster's context, in one test namespace."""

    kubectl: str
    namespace: str

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.kubectl, "--context", CONTEXT, "-n", self.namespace, *args]
        result = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def apply(self, manifest: dict[str, Any]) -> None:
        self.run("apply", "-f", "-", stdin=json.dumps(manifest))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.run("get", kind, name, "-o", "json").stdout)
        return obj

    def wait_ready(self, pod: str, timeout: int = 180) -> None:
        self.run(
            "wait",
            "--for=condition=Ready",
            f"pod/{pod}",
            f"--timeout={timeout}s",
            timeout=timeout + 30,
        )

    def exec(
        self, pod: str, *command: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.run("exec", pod, "--", *command, check=False, timeout=timeout)

    def pod(
        self,
        name: str,
        node_label: str,
        command: str,
        labels: dict[str, str],
        pull: str = "IfNotPresent",
    ) -> None:
        """A busybox pod on the worker labelled forest-mlops/node=node_label."""
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "nodeSelector": {"forest-mlops/node": node_label},
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": TEST_IMAGE,
                            # From the cluster's local registry, the only one reachable.
                            "imagePullPolicy": pull,
                            "command": ["sh", "-c", command],
                        }
                    ],
                },
            }
        )


@pytest.fixture(scope="session")
def kubectl() -> str:
    if "FOREST_CLUSTER_TEST_IMAGE" not in os.environ:
        pytest.skip(
            "cluster checks run with make cluster-check (it pushes their test image to the "
            "cluster's registry first)"
        )
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("no kubectl (make cluster builds one): cluster checks not run")
    try:
        probe = subprocess.run(
            [kubectl, "--context", CONTEXT, "get", "--raw", "/readyz", "--request-timeout=10s"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"kube context {CONTEXT} does not answer ({exc}): run make cluster")
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no answer"])[-1]
        pytest.skip(f"no cluster answers in kube context {CONTEXT} ({reason}): run make cluster")
    return kubectl


@pytest.fixture(scope="module")
def kube(kubectl: str) -> Iterator[Kube]:
    """A fresh namespace for the module, deleted afterwards."""
    namespace = f"cluster-check-{uuid.uuid4().hex[:6]}"
    admin = Kube(kubectl, "default")
    admin.run("create", "namespace", namespace)
    try:
        yield Kube(kubectl, namespace)
    finally:
        admin.run("delete", "namespace", namespace, "--wait=false", check=False)


def eventually(check: Any, timeout: float, interval: float = 2.0) -> Any:
    """Calls check() until it returns a truthy value; the last value when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
