"""A stand-in Kubernetes API server for `helm template --dry-run=server`, which is the only way
to make Helm's `lookup` see existing objects without a cluster (there is none here).

It answers API discovery for the kinds the chart renders and GET of the Secrets it was given
(labelled as owned by the release, as Helm checks); every other object is 404, as in an empty
namespace. Nothing else of Kubernetes is imitated: tests use it only to prove that generated
credentials are read back on upgrade.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CORE_KINDS = ["Secret", "ConfigMap", "Service", "PersistentVolumeClaim", "ServiceAccount", "Pod"]
GROUP_KINDS = {
    "apps/v1": ["Deployment", "StatefulSet"],
    "batch/v1": ["Job", "CronJob"],
    "networking.k8s.io/v1": ["NetworkPolicy"],
    "autoscaling/v2": ["HorizontalPodAutoscaler"],
    "rbac.authorization.k8s.io/v1": ["Role", "RoleBinding"],
    "policy/v1": ["PodDisruptionBudget"],
}


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


def _resources(group_version: str, kinds: list[str]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": [
            {
                "name": _plural(kind),
                "singularName": kind.lower(),
                "namespaced": True,
                "kind": kind,
                "verbs": ["get", "list", "create", "update", "delete"],
            }
            for kind in kinds
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    server: _StubServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, code: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "/version":
            return self._send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/api/v1":
            return self._send(200, _resources("v1", CORE_KINDS))
        if path == "/apis":
            groups = [
                {
                    "name": gv.split("/")[0],
                    "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                    "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]},
                }
                for gv in GROUP_KINDS
            ]
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        for group_version, kinds in GROUP_KINDS.items():
            if path == f"/apis/{group_version}":
                return self._send(200, _resources(group_version, kinds))
        parts = path.strip("/").split("/")
        if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
            data = self.server.secrets.get((parts[3], parts[5]))
            if data is not None:
                return self._send(200, self.server.secret_object(parts[3], parts[5], data))
        return self._send(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
                "message": f"{path} not found",
            },
        )


class _StubServer(ThreadingHTTPServer):
    def __init__(self, release: str, secrets: Mapping[tuple[str, str], Mapping[str, str]]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.release = release
        self.secrets = dict(secrets)

    def secret_object(self, namespace: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                # Helm refuses to adopt objects another release (or nobody) owns.
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": self.release,
                    "meta.helm.sh/release-namespace": namespace,
                },
            },
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
        }


@contextmanager
def kube_api_stub(
    tmp_path: Path,
    *,
    release: str,
    secrets: Mapping[tuple[str, str], Mapping[str, str]],
) -> Iterator[Path]:
    """Serve the stub in a thread; yields a kubeconfig file pointing at it."""
    server = _StubServer(release, secrets)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "stub", "cluster": {"server": f"http://{host}:{port}"}}],
                "users": [{"name": "stub", "user": {}}],
                "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
                "current-context": "stub",
            }
        )
    )
    try:
        yield kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
