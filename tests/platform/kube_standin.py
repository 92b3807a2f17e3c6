"""A stand-in for the few Kubernetes API calls `forest-mlops retrain` makes.

No API server can run on this machine (no Docker, no kind), so the retrain client is tested
against this small HTTP server instead. It is NOT a cluster: it validates nothing, schedules
nothing and runs nothing. It answers seven requests with the JSON shapes of the Kubernetes API
(CronJob list/read, Job create/status/delete, Pod list, Pod log) and plays one scripted Job:
its pod is Pending (ImagePullBackOff) on the first look, then Running with a log (`log_lines`),
then the Job ends as `outcome` says. Everything the client sends is recorded for the test to check.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

LOG_LINES = ["loading 1234 rows from train_data\n", "macro-F1 0.81: promoted to champion\n"]


class KubeStandIn:
    def __init__(
        self,
        cronjobs: list[dict[str, Any]],
        *,
        outcome: str = "Complete",
        log_lines: list[str] | None = None,
    ) -> None:
        self.cronjobs = cronjobs
        self.outcome = outcome  # "Complete", or a Failed reason such as "BackoffLimitExceeded"
        self.log_lines = LOG_LINES if log_lines is None else log_lines
        self.created_jobs: list[dict[str, Any]] = []
        self.deleted_jobs: list[tuple[str, dict[str, Any]]] = []  # (name, DeleteOptions)
        self.requests: list[str] = []
        self.pod_looks = 0
        self.log_served = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> KubeStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "standin", "user": {"token": "not-a-secret"}}],
            "contexts": [
                {
                    "name": "standin",
                    "context": {"cluster": "standin", "user": "standin", "namespace": namespace},
                }
            ],
            "current-context": "standin",
        }

    # --- the scripted Job -------------------------------------------------------------------

    def _job_status(self, name: str) -> dict[str, Any]:
        job = next(j for j in self.created_jobs if j["metadata"]["name"] == name)
        conditions = []
        if self.log_served:
            if self.outcome == "Complete":
                conditions = [{"type": "Complete", "status": "True"}]
            else:
                conditions = [{"type": "Failed", "status": "True", "reason": self.outcome}]
        return {**job, "status": {"conditions": conditions}}

    def _pods(self, job_name: str) -> dict[str, Any]:
        self.pod_looks += 1
        pod_meta = {
            "name": f"{job_name}-x7k2p",
            "namespace": "forest-mlops",
            "creationTimestamp": "2026-11-26T10:00:00Z",
            "labels": {"batch.kubernetes.io/job-name": job_name},
        }
        if self.pod_looks == 1:
            status = {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "train",
                        "image": "forest-mlops/airflow:0.1.0",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull"}},
                    }
                ],
            }
        else:
            phase = "Running" if not self.log_served else "Succeeded"
            status = {"phase": phase}
        return {
            "kind": "PodList",
            "apiVersion": "v1",
            "items": [{"metadata": pod_meta, "status": status}],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _not_found(self, what: str) -> None:
                self._send(
                    404,
                    {
                        "kind": "Status",
                        "status": "Failure",
                        "reason": "NotFound",
                        "message": f"{what} not found",
                        "code": 404,
                    },
                )

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                standin.requests.append(f"GET {url.path}")
                if m := re.fullmatch(r"/apis/batch/v1/namespaces/([^/]+)/cronjobs", url.path):
                    selector = query.get("labelSelector", [""])[0]
                    wanted = dict(p.split("=", 1) for p in selector.split(",") if p)
                    items = [
                        c
                        for c in standin.cronjobs
                        if c["metadata"].get("namespace") == m.group(1)
                        and wanted.items() <= c["metadata"].get("labels", {}).items()
                    ]
                    self._send(
                        200, {"kind": "CronJobList", "apiVersion": "batch/v1", "items": items}
                    )
                elif m := re.fullmatch(
                    r"/apis/batch/v1/namespaces/([^/]+)/cronjobs/([^/]+)", url.path
                ):
                    found = [c for c in standin.cronjobs if c["metadata"]["name"] == m.group(2)]
                    self._send(200, found[0]) if found else self._not_found(f"cronjob {m.group(2)}")
                elif m := re.fullmatch(
                    r"/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)/status", url.path
                ):
                    self._send(200, standin._job_status(m.group(2)))
                elif re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", url.path):
                    selector = query.get("labelSelector", [""])[0]
                    self._send(200, standin._pods(selector.split("=", 1)[1]))
                elif re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", url.path):
                    # The client sends follow=True; the API server parses it like Go's ParseBool.
                    if query.get("follow", [""])[0].lower() != "true":
                        self._send(400, {"kind": "Status", "message": "expected follow=true"})
                        return
                    standin.log_served = True
                    self._send(200, "".join(standin.log_lines).encode(), "text/plain")
                else:
                    self._not_found(url.path)

            def do_POST(self) -> None:
                url = urlparse(self.path)
                standin.requests.append(f"POST {url.path}")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if re.fullmatch(r"/apis/batch/v1/namespaces/([^/]+)/jobs", url.path):
                    created = {**body, "metadata": {**body["metadata"], "uid": "job-uid-1"}}
                    standin.created_jobs.append(created)
                    self._send(201, created)
                else:
                    self._not_found(url.path)

            def do_DELETE(self) -> None:
                url = urlparse(self.path)
                standin.requests.append(f"DELETE {url.path}")
                length = int(self.headers.get("Content-Length") or 0)
                options = json.loads(self.rfile.read(length)) if length else {}
                # The python client sends propagationPolicy as a query parameter.
                options |= {k: v[0] for k, v in parse_qs(url.query).items()}
                if m := re.fullmatch(r"/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)", url.path):
                    standin.deleted_jobs.append((m.group(2), options))
                    self._send(200, {"kind": "Status", "status": "Success"})
                else:
                    self._not_found(url.path)

        return Handler
