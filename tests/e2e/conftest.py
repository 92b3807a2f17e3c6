"""The end-to-end run on the kind cluster (`make e2e`, scripts/e2e/run.sh).

Skipped unless FOREST_E2E=1 (set by scripts/e2e/run.sh, which prepares skaffold, the stand-in
images and a kubeconfig whose current context is the cluster). The tests in test_kind.py run in
file order and build on each other, as the loop does: deploy, collect, train, serve, retrain,
upgrade, reinstall. What they measure goes into RESULTS, written to bench/results/e2e-kind.json
when the session ends, with every test's outcome; then how to open each UI is printed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_FILE = REPO_ROOT / "bench" / "results" / "e2e-kind.json"
ENABLED = os.environ.get("FOREST_E2E") == "1"
NAMESPACE = "forest-mlops"
RELEASE = "forest-mlops"
CONTEXT = os.environ.get("FOREST_E2E_CONTEXT", "kind-forest-mlops")
PROFILE = os.environ.get("FOREST_E2E_PROFILE", "offline")

RESULTS: dict[str, Any] = {
    "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "profile": PROFILE,
    "versions": {},
    "phases_seconds": {},
    "pods_per_task": {},
    "chaos": {},
    "figures": {},
    "checks": {},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        # A run of some phases only (-k) never counts as a pass of the whole loop.
        RESULTS["checks_selected"] = sum(
            Path(__file__).parent in Path(str(item.fspath)).parents for item in items
        )
        RESULTS["checks_in_loop"] = sum(
            1 for _ in (Path(__file__).parent / "test_kind.py").read_text().split("\ndef test_")[1:]
        )
        return
    skip = pytest.mark.skip(reason="make e2e runs these (the kind cluster of make cluster)")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Each phase builds on the ones before: after a failure the rest would only wait out their
    # time-outs (hours in all). They are skipped, and say so in the result file.
    failed = [name for name, c in RESULTS["checks"].items() if c["outcome"] == "failed"]
    if ENABLED and failed:
        pytest.skip(f"an earlier phase failed: {failed[0]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not ENABLED or Path(__file__).parent not in Path(str(item.fspath)).parents:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        # a skip in setup (an earlier phase failed) is recorded as skipped
        entry = {"outcome": report.outcome, "seconds": round(report.duration, 1)}
        if report.outcome == "failed":
            entry["error"] = str(report.longrepr)[-1500:]
        if hasattr(report, "wasxfail") and report.when == "call":
            # A known gap's check (xfail, strict): it failed, as its reason says it must until
            # the gap is closed. Recorded as such, never as passed; a strict xfail that passes
            # comes here as failed.
            entry |= {"outcome": "xfailed", "reason": report.wasxfail,
                      "error": str(report.longrepr)[-1500:]}  # fmt: skip
        RESULTS["checks"][item.name] = entry
        write_results(finished=False)  # a run cut short still leaves what it measured


def write_results(*, finished: bool) -> None:
    RESULTS["finished"] = finished
    RESULTS["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # An xfailed check is a known gap that failed as expected: it does not stop the loop.
    RESULTS["passed"] = all(
        c["outcome"] in ("passed", "xfailed") for c in RESULTS["checks"].values()
    ) and len(RESULTS["checks"]) == RESULTS.get("checks_in_loop")
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(RESULTS, indent=2, sort_keys=True) + "\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not ENABLED or not RESULTS["checks"]:
        return
    write_results(finished=True)
    lines = [
        "",
        f"e2e: results in {RESULT_FILE.relative_to(REPO_ROOT)}; the platform is still running.",
        "Open the UIs (one terminal each; commands from the README):",
        *(f"  {cmd}   # {name}" for name, cmd, _ in readme_port_forwards()),
        "Passwords: kubectl -n forest-mlops get secret forest-mlops-airflow "
        "-o jsonpath='{.data.admin-password}' | base64 -d   (user admin; others: README)",
        "Tear down: helm -n forest-mlops uninstall forest-mlops (keeps Secrets and PVCs), "
        "make cluster-down (the whole cluster)",
    ]
    print("\n".join(lines))


# --- helpers -----------------------------------------------------------------------------


def run(*argv: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def kubectl(*args: str, timeout: float = 120) -> str:
    return run("kubectl", "--context", CONTEXT, "-n", NAMESPACE, *args, timeout=timeout).stdout


# The mark of a namespace make e2e created: scripts/e2e/namespaces.sh deletes only those.
E2E_NAMESPACE_LABEL = ("forest-mlops.dev/created-by", "make-e2e")
# Pod Security Admission: every pod of the platform meets `restricted`
# (tests/security/test_pod_security.py), so the e2e's namespaces enforce it, as documented.
POD_SECURITY_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}


def create_e2e_namespace(name: str) -> None:
    """Creates `name` with make e2e's label (`create` fails on one that exists, so a namespace
    of someone else's is never marked); one an earlier make e2e left with the label is reused."""
    key, value = E2E_NAMESPACE_LABEL
    labels = {key: value, **POD_SECURITY_LABELS}
    manifest = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels}}  # fmt: skip
    proc = subprocess.run(
        ["kubectl", "--context", CONTEXT, "create", "-f", "-"],
        input=json.dumps(manifest), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode == 0:
        return
    found = json.loads(
        run("kubectl", "--context", CONTEXT, "get", "namespace", name, "-o",
            "jsonpath={.metadata.labels}").stdout or "{}"
    )  # fmt: skip
    assert found.get(key) == value, (
        f"namespace {name} exists and make e2e did not create it: not used ({proc.stderr})"
    )


def secret_value(name: str, key: str, namespace: str = NAMESPACE) -> str:
    data = kubectl("get", "secret", name, "-o", f"jsonpath={{.data.{key}}}")
    return base64.b64decode(data).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"port-forward exited: {proc.stderr.read() if proc.stderr else ''}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.3)
    raise AssertionError(f"port-forward to {port} did not open in {timeout} s")


@contextlib.contextmanager
def port_forward_command(argv: list[str], local_port: int) -> Iterator[str]:
    """Runs a `kubectl port-forward` command line as given; yields http://127.0.0.1:PORT."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(local_port, proc)
        yield f"http://127.0.0.1:{local_port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


@contextlib.contextmanager
def forward(service: str, port: int, namespace: str = NAMESPACE) -> Iterator[str]:
    """A port-forward to a Service on a free local port."""
    local = free_port()
    argv = [
        "kubectl",
        "--context",
        CONTEXT,
        "-n",
        namespace,
        "port-forward",
        f"svc/{service}",
        f"{local}:{port}",
    ]
    with port_forward_command(argv, local) as url:
        yield url


def readme_port_forwards() -> list[tuple[str, str, int]]:
    """(name, command, local port) of each row of the README's UI table, as written there."""
    rows = []
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if line.startswith("| ") and "port-forward svc/" in line:
            cells = [c.strip() for c in line.strip("|").split("|")]
            command = cells[1].strip("`")
            rows.append((cells[0], command, int(command.rsplit(" ", 1)[1].split(":")[0])))
    return rows


def poll(what: str, probe: Callable[[], Any], timeout: float, interval: float = 5) -> Any:
    """probe() until it returns something truthy; fails with the last value or error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except Exception as exc:  # the thing may not answer yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


class AirflowApi:
    """The Airflow REST API (/api/v2) through a port-forward, with the generated password."""

    def __init__(self, url: str) -> None:
        password = secret_value(f"{RELEASE}-airflow", "admin-password")
        answer = httpx.post(
            f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        assert answer.status_code == 201, answer.text
        token = answer.json()["access_token"]
        self.client = httpx.Client(
            base_url=f"{url}/api/v2", timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def running_task_instance(self, dag_id: str, task_id: str) -> tuple[str, dict[str, Any]] | None:
        """(run id, task instance) of dag_id.task_id where it is `running` now, or None."""
        for dag_run in self.runs(dag_id):
            if dag_run["state"] != "running":
                continue
            ti = self.task_instance(dag_id, dag_run["dag_run_id"], task_id)
            if ti["state"] == "running":
                return dag_run["dag_run_id"], ti
        return None


@contextlib.contextmanager
def airflow_api() -> Iterator[AirflowApi]:
    with forward(f"{RELEASE}-airflow-api-server", 8080) as url:
        api = AirflowApi(url)
        try:
            yield api
        finally:
            api.client.close()


def mapped_key(task_id: str, map_index: Any) -> str:
    """How TaskPodWatcher keys a mapped task instance: `task[map_index]`; unmapped: task_id."""
    index = int(map_index)
    return f"{task_id}[{index}]" if index >= 0 else task_id


class TaskPodWatcher:
    """Records every KubernetesExecutor pod from the API while the run goes on (the pods are
    deleted when their task ends): (dag_id, task_id, run_id, try_number) -> pod names, from
    the annotations Airflow puts on each pod (labels hold shortened, label-safe values). A
    mapped task instance's task_id carries its map index, `train_extra_trees[2]` (mapped_key),
    so each of its instances has a key of its own; each pod's node and start-up (creation to
    its container running) are kept too."""

    def __init__(self) -> None:
        from kubernetes import client, config, watch

        config.load_kube_config(context=CONTEXT)
        self.core = client.CoreV1Api()
        self._watch = watch.Watch()
        self.pods: dict[tuple[str, str, str, str], set[str]] = {}
        self.phases: dict[str, str] = {}
        self.nodes: dict[str, str] = {}
        self.startup_seconds: dict[str, float] = {}
        self.created: dict[str, datetime.datetime] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TaskPodWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in self._watch.stream(
                    self.core.list_namespaced_pod,
                    NAMESPACE,
                    label_selector="kubernetes_executor=True",
                    timeout_seconds=60,
                ):
                    pod = event["object"]
                    notes = pod.metadata.annotations or {}
                    task_id = mapped_key(notes.get("task_id", ""), notes.get("map_index", -1))
                    key = (notes.get("dag_id", ""), task_id, notes.get("run_id", ""),
                           notes.get("try_number", ""))  # fmt: skip
                    self.pods.setdefault(key, set()).add(pod.metadata.name)
                    self.phases[pod.metadata.name] = pod.status.phase
                    self._placement(pod)
                    if self._stop.is_set():
                        return
            except Exception:  # the API server may blink; the stream resumes
                time.sleep(1)

    def _placement(self, pod: Any) -> None:
        name = pod.metadata.name
        self.created.setdefault(name, pod.metadata.creation_timestamp)
        if pod.spec.node_name:
            self.nodes[name] = pod.spec.node_name
        for status in pod.status.container_statuses or []:
            state = status.state
            started = (state.running and state.running.started_at) or (
                state.terminated and state.terminated.started_at
            )
            if status.name == "base" and started and name not in self.startup_seconds:
                created = pod.metadata.creation_timestamp
                self.startup_seconds[name] = round((started - created).total_seconds(), 1)

    def running(self, dag_id: str) -> list[tuple[tuple[str, str, str, str], str]]:
        return [
            (key, name)
            for key, names in list(self.pods.items())
            for name in names
            if key[0] == dag_id and self.phases.get(name) == "Running"
        ]


def container_running(pod: Any, container: str = "base") -> bool:
    """The pod's `container` (the task's: the KubernetesExecutor names it base) is running."""
    return any(
        status.name == container and status.state is not None and status.state.running
        for status in (pod.status.container_statuses or [])
    )


# Run in a task pod by `kubectl exec`: SIGSTOP to every process of the container but PID 1
# and itself. A stopped task can neither finish nor report to Airflow, so a task instance
# still `running` after this was running when its pod was killed.
FREEZE_TASK = (
    "import os, signal\n"
    "for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
    "    if pid not in (1, os.getpid()):\n"
    "        try:\n"
    "            os.kill(pid, signal.SIGSTOP)\n"
    "        except ProcessLookupError:\n"
    "            pass\n"
)


def kill_outcome(killed_try: int, ti: dict[str, Any]) -> str | None:
    """What became of a task instance whose pod was killed during try `killed_try`:
    'retried' (a later try ended it in success), 'finished before the kill' (the killed try
    itself succeeded), 'failed' (retries used up); None while it is not over."""
    if ti["state"] == "failed":
        return "failed"
    if ti["state"] != "success":
        return None
    return "retried" if int(ti["try_number"]) > killed_try else "finished before the kill"


def loads_per_batch(log_rows: list[tuple[Any, ...]], dag_run_id: str) -> dict[int, int]:
    """'loaded' ingestion_log rows per batch among the (ingestion_run_id, batch_number, status)
    rows that the DAG run `dag_run_id` wrote (its fetch names them airflow:<run id>-...)."""
    counts: dict[int, int] = {}
    for run_id, batch, status in log_rows:
        if str(run_id).startswith(f"airflow:{dag_run_id}-") and status == "loaded":
            counts[int(batch)] = counts.get(int(batch), 0) + 1
    return counts


@pytest.fixture(scope="session")
def task_pods() -> Iterator[TaskPodWatcher]:
    watcher = TaskPodWatcher().start()
    yield watcher
    watcher.stop()
