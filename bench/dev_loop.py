"""How fast an edit reaches the kind cluster: `make bench-dev-loop` → bench/results/dev-loop.json.

Run through scripts/e2e/dev-loop.sh (it prepares skaffold, the stand-ins in the registry and a
kubeconfig, as `make e2e` does) on the cluster of `make cluster`. Every time is taken from the
moment a file is written to the moment the new behaviour is observed from outside the cluster:

  0. warm-up (not a figure): `skaffold build`, so every image is built and in the registry;
  1. the cluster is deleted and made anew (`make cluster-down && make cluster`), then
     `skaffold run` on it: the build cache and the registry are warm, the nodes empty;
  2. `skaffold dev -p <profile>,dev` runs; an edit of the inference service (a response header
     added in create_app) until GET /health through `kubectl port-forward` carries it;
  3. the same for the data API;
  4. an edit of a DAG's task code (a line printed by the extraction DAG's first task) until a
     task pod of a run started after the edit has printed it (its log, through the Airflow API);
  5. for each step the bytes that came into the nodes (their eth0 receive counters: pulls plus
     the cluster's own traffic) and what the registry grew by; the nodes' containerd disk use
     before the edit cycles and after them (--cycles, default 5: one edit of each kind a cycle).

Every edited file is restored at the end, whatever happens. This deletes the cluster and
anything running on it: it is a benchmark of its own, never part of `make bench` or `make e2e`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT = REPO_ROOT / "bench" / "results" / "dev-loop.json"
SKAFFOLD_LOG = REPO_ROOT / "bench" / "results" / "dev-loop-skaffold.log"
NAMESPACE = "forest-mlops"
RELEASE = "forest-mlops"
CONTEXT = os.environ.get("FOREST_E2E_CONTEXT", "kind-forest-mlops")
CLUSTER = CONTEXT.removeprefix("kind-")
REGISTRY_CONTAINER = "forest-mlops-registry"
DAG_ID = "forest_cover_data_extraction"
DAG_TASK = "collection_pending"
HEADER = "X-Dev-Loop"
# Goals of issue 20 (benchmark figures, not timed tests).
TARGETS = {"skaffold_run_fresh_cluster_s": 150, "service_edit_s": 10, "dag_edit_s": 120}


def sh(*argv: str, timeout: float = 900, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def docker() -> str:
    return sh("bash", "scripts/docker-engine.sh", "--client").strip()


def nodes() -> list[str]:
    return sh("kind", "get", "nodes", "--name", CLUSTER).split()


def node_rx_bytes() -> int:
    """Bytes received by all nodes so far (eth0: the kind network, where pulls come from)."""
    return sum(
        int(sh(docker(), "exec", n, "cat", "/sys/class/net/eth0/statistics/rx_bytes"))
        for n in nodes()
    )


def node_disk_bytes() -> dict[str, int]:
    """containerd's disk use on each node: image content, unpacked layers, containers."""
    return {n: du(n, "/var/lib/containerd") for n in nodes()}


def du(container: str, path: str) -> int:
    """Bytes under path in a container. containerd may remove a snapshot while du walks it
    (seen): du then exits 1 but still prints the total of what it could read."""
    out = sh(docker(), "exec", container, "sh", "-c", f"du -sxB1 {path} 2>/dev/null; true")
    return int(out.split()[0])


def registry_bytes() -> int:
    return du(REGISTRY_CONTAINER, "/var/lib/registry")


@dataclass
class Meter:
    """Bytes into the nodes and into the registry across one step."""

    rx: int = field(default_factory=node_rx_bytes)
    registry: int = field(default_factory=registry_bytes)

    def read(self) -> dict[str, int]:
        return {
            "bytes_into_nodes": node_rx_bytes() - self.rx,
            "registry_growth_bytes": registry_bytes() - self.registry,
        }


# --- edits ---------------------------------------------------------------------------------


@dataclass
class Edit:
    """A reversible edit of one source file: apply(nonce) writes the block next to the anchor
    (before its last occurrence, or after its first), restore() puts the file back."""

    path: Path
    anchor: str
    before: bool
    block: Callable[[str], str]
    original: str = ""

    def apply(self, nonce: str) -> None:
        if not self.original:
            self.original = self.path.read_text()
        text = self.original
        after = text.index(self.anchor) + len(self.anchor)
        at = text.rindex(self.anchor) if self.before else after
        self.path.write_text(text[:at] + self.block(nonce) + text[at:])

    def restore(self) -> None:
        if self.original:
            self.path.write_text(self.original)


def header_block(nonce: str) -> str:
    return (
        '    @app.middleware("http")\n'
        "    async def dev_loop_marker(request, call_next):  # type: ignore[no-untyped-def]\n"
        "        response = await call_next(request)\n"
        f'        response.headers["{HEADER}"] = "{nonce}"\n'
        "        return response\n\n"
    )


def dag_block(nonce: str) -> str:
    return f'        print("dev-loop marker {nonce}")\n'


def service_edit(path: str) -> Edit:
    # Before create_app's final `return app`: the header goes on every response.
    return Edit(REPO_ROOT / path, "    return app\n", True, header_block)


DAG_EDIT = Edit(
    REPO_ROOT / "dags" / f"{DAG_ID}.py", f"    def {DAG_TASK}() -> bool:\n", False, dag_block
)


# --- observing the cluster -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortForward:
    """`kubectl port-forward svc/NAME`, started again whenever it has exited (a pod restarted
    or was replaced)."""

    def __init__(self, service: str, port: int) -> None:
        self.service, self.port, self.local = service, port, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                ["kubectl", "--context", CONTEXT, "-n", NAMESPACE, "port-forward",
                 f"svc/{self.service}", f"{self.local}:{self.port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(0.5)
        return f"http://127.0.0.1:{self.local}"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def wait_until(what: str, probe: Callable[[], bool], timeout: float, interval: float) -> float:
    """Seconds until probe() is true (its errors count as false); fails after timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(Exception):
            if probe():
                return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def header_is(forward: PortForward, nonce: str) -> bool:
    answer = httpx.get(f"{forward.url}/health", timeout=2)
    return bool(answer.headers.get(HEADER) == nonce)


class Airflow:
    """The Airflow REST API through a port-forward that survives the api-server's rollouts."""

    def __init__(self) -> None:
        self.forward = PortForward(f"{RELEASE}-airflow-api-server", 8080)
        self.password = sh(
            "kubectl", "--context", CONTEXT, "-n", NAMESPACE, "get", "secret",
            f"{RELEASE}-airflow", "-o", "jsonpath={.data.admin-password}",
        )  # fmt: skip
        import base64

        self.password = base64.b64decode(self.password).decode()

    def client(self) -> httpx.Client:
        url = self.forward.url
        token = httpx.post(
            f"{url}/auth/token", json={"username": "admin", "password": self.password}, timeout=10
        ).json()["access_token"]
        return httpx.Client(
            base_url=f"{url}/api/v2", timeout=20, headers={"Authorization": f"Bearer {token}"}
        )

    def marker_seen(self, nonce: str, after: str, triggered: list[str]) -> bool:
        """True once a run started after `after` (ISO time) logged the marker; triggers a run
        when none is queued or running, so the next task pod comes as soon as it can."""
        with self.client() as api:
            runs = api.get(
                f"/dags/{DAG_ID}/dagRuns", params={"order_by": "-run_after", "limit": 10}
            ).json()["dag_runs"]
            fresh = [r for r in runs if (r.get("start_date") or "9999") > after]
            for run in fresh:
                task = api.get(
                    f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/{DAG_TASK}"
                ).json()
                if task.get("state") in {"success", "failed", "skipped", "up_for_retry"}:
                    log = api.get(
                        f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/{DAG_TASK}"
                        f"/logs/{task['try_number']}",
                        params={"full_content": "true"},
                    )
                    if f"dev-loop marker {nonce}" in log.text:
                        return True
            if not [r for r in runs if r["state"] in {"queued", "running"}]:
                answer = api.post(f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
                if answer.status_code < 300:
                    triggered.append(answer.json()["dag_run_id"])
        return False


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


# --- the steps -----------------------------------------------------------------------------


def skaffold_argv(verb: str, *profiles: str) -> list[str]:
    chosen = ",".join(p for p in profiles if p)
    return ["skaffold", verb, "--kube-context", CONTEXT, *(["-p", chosen] if chosen else [])]


def fresh_cluster() -> float:
    """make cluster-down && make cluster; then the kubeconfig of scripts/e2e/prepare.sh anew."""
    started = time.monotonic()
    # kind writes the new cluster's context where the user keeps it, as `make cluster` does.
    original = os.environ.get("KUBECONFIG_ORIG", str(Path.home() / ".kube" / "config"))
    user_env = {**os.environ, "KUBECONFIG": original}
    sh("make", "cluster-down", timeout=600, env=user_env)
    sh("make", "cluster", timeout=1800, env=user_env)
    config = sh(
        "kubectl", "config", "view", "--raw", "--minify", "--flatten", "--context", CONTEXT,
        env=user_env,
    )  # fmt: skip
    Path(os.environ["KUBECONFIG"]).write_text(config)
    return time.monotonic() - started


@contextlib.contextmanager
def skaffold_dev(profile: str) -> Iterator[subprocess.Popen[bytes]]:
    """`skaffold dev` in the background until it has deployed and watches for changes."""
    log = SKAFFOLD_LOG.open("w")
    argv = [*skaffold_argv("dev", profile, "dev"), "--cleanup=false", "--port-forward=off"]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(
            "skaffold dev deployed",
            lambda: "Watching for changes" in SKAFFOLD_LOG.read_text(),
            timeout=1200,
            interval=2,
        )
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=5, help="edit cycles (default 5)")
    parser.add_argument(
        "--keep-cluster", action="store_true", help="skip step 1 (no fresh cluster)"
    )
    args = parser.parse_args(argv)
    profile = os.environ.get("FOREST_E2E_PROFILE", "offline")
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "profile": profile,
        "skaffold": sh("skaffold", "version").strip(),
        "cycles": args.cycles,
        "targets": TARGETS,
    }
    edits = {
        "inference": service_edit("inference/inference_api/app.py"),
        "api-data": service_edit("api-data/api_data/app.py"),
    }
    try:
        started = time.monotonic()
        sh(*skaffold_argv("build", profile), timeout=3600)
        result["warm_up_build_s"] = round(time.monotonic() - started, 1)
        if not args.keep_cluster:
            result["fresh_cluster_s"] = round(fresh_cluster(), 1)
        meter = Meter()
        started = time.monotonic()
        sh(*skaffold_argv("run", profile), "--status-check=true", timeout=3600)
        result["step1_skaffold_run"] = {
            "seconds": round(time.monotonic() - started, 1),
            "fresh_cluster": not args.keep_cluster,
            **meter.read(),
        }
        print(f"step 1: skaffold run {result['step1_skaffold_run']}", flush=True)
        with skaffold_dev(profile):
            disk_before = node_disk_bytes()
            forwards = {
                name: PortForward(f"{RELEASE}-{name}", port)
                for name, port in (("inference", 8001), ("api-data", 8000))
            }
            airflow = Airflow()
            steps: dict[str, list[dict[str, Any]]] = {"inference": [], "api-data": [], "dag": []}
            for cycle in range(args.cycles):
                for name, edit in edits.items():
                    nonce = f"{name}-{cycle}-{time.time_ns()}"
                    meter = Meter()
                    edit.apply(nonce)
                    seconds = wait_until(
                        f"{name} edit answering",
                        functools.partial(header_is, forwards[name], nonce),
                        timeout=300,
                        interval=0.25,
                    )
                    steps[name].append({"seconds": round(seconds, 2), **meter.read()})
                    print(f"cycle {cycle} {name}: {steps[name][-1]}", flush=True)
                nonce = f"dag-{cycle}-{time.time_ns()}"
                meter = Meter()
                after, triggered = utc_now(), list[str]()
                DAG_EDIT.apply(nonce)
                seconds = wait_until(
                    "DAG edit running in a task pod",
                    functools.partial(airflow.marker_seen, nonce, after, triggered),
                    timeout=900,
                    interval=3,
                )
                steps["dag"].append(
                    {"seconds": round(seconds, 1), "runs_triggered": len(triggered),
                     **meter.read()}
                )  # fmt: skip
                print(f"cycle {cycle} dag: {steps['dag'][-1]}", flush=True)
            disk_after = node_disk_bytes()
            for forward in [*forwards.values(), airflow.forward]:
                forward.close()
    finally:
        for edit in [*edits.values(), DAG_EDIT]:
            edit.restore()
    median = {name: statistics.median(s["seconds"] for s in runs) for name, runs in steps.items()}
    result.update(
        step2_inference_edit=steps["inference"],
        step3_api_data_edit=steps["api-data"],
        step4_dag_edit=steps["dag"],
        median_seconds=median,
        node_disk_bytes={"before_edits": disk_before, "after_edits": disk_after},
        node_disk_growth_bytes=sum(disk_after.values()) - sum(disk_before.values()),
    )
    result["targets_met"] = (
        result["step1_skaffold_run"]["seconds"] <= TARGETS["skaffold_run_fresh_cluster_s"]
        and max(median["inference"], median["api-data"]) <= TARGETS["service_edit_s"]
        and median["dag"] <= TARGETS["dag_edit_s"]
    )
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_seconds", "node_disk_growth_bytes")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
