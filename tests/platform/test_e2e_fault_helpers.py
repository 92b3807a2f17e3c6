"""The pieces of make e2e's fault check that can run off the cluster (tests/e2e/conftest.py).

The fault itself (a running task's pod killed, Airflow retrying it, the rows against the data
API) only runs on the cluster, in tests/e2e/test_kind.py; these check the freeze it relies on
and the verdicts it draws.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.e2e.conftest import FREEZE_TASK, kill_outcome, loads_per_batch
from tests.support.missing import absent

# Run before FREEZE_TASK: it must never signal the processes of the machine itself, so it only
# goes on inside a fresh PID namespace (a handful of processes, this one among the first).
ONLY_IN_A_FRESH_PID_NAMESPACE = (
    "import os\n"
    "pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
    "assert len(pids) <= 4 and os.getpid() <= 4, pids\n"
)


def test_the_freeze_stops_every_process_of_the_container_but_pid_1() -> None:
    """As in a task pod: PID 1 (dumb-init there, sh here) and a child; after FREEZE_TASK the
    child is stopped (state T), so a task can neither finish nor report before the kill."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        absent("root and unshare(1)", hint="a PID namespace for the freeze test")
    script = (
        'sleep 60 & child=$!; "$0" -c "$1" || exit 9; '
        'sleep 0.5; cut -d" " -f3 /proc/$child/stat; cut -d" " -f3 /proc/1/stat'
    )
    proc = subprocess.run(
        [unshare, "--pid", "--fork", "--mount-proc", "sh", "-c", script, sys.executable,
         ONLY_IN_A_FRESH_PID_NAMESPACE + FREEZE_TASK],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    child, init = proc.stdout.split()
    assert child == "T", proc.stdout  # stopped
    assert init != "T", proc.stdout  # PID 1 is left alone (it takes the kubelet's signals)


def test_a_kill_is_proven_only_by_a_later_try_ending_the_task() -> None:
    assert kill_outcome(1, {"state": "running", "try_number": 1}) is None
    assert kill_outcome(1, {"state": "up_for_retry", "try_number": 1}) is None
    assert kill_outcome(1, {"state": "running", "try_number": 2}) is None
    assert kill_outcome(1, {"state": "success", "try_number": 2}) == "retried"
    assert kill_outcome(1, {"state": "success", "try_number": 1}) == "finished before the kill"
    assert kill_outcome(1, {"state": "failed", "try_number": 3}) == "failed"


def test_loads_are_counted_per_batch_for_the_run_only() -> None:
    run = "scheduled__2026-12-05T06:00:00+00:00"
    rows = [
        (f"airflow:{run}-20261205T060001-aaaa", 4, "loaded"),
        (f"airflow:{run}-20261205T060001-aaaa", 5, "loaded"),  # a window over two batches
        (f"airflow:{run}-20261205T060040-bbbb", 5, "failed"),
        ("airflow:scheduled__2026-12-05T06:00:45+00:00-20261205T060050-cccc", 5, "loaded"),
        (f"cli-{run}", 4, "loaded"),
    ]
    assert loads_per_batch(rows, run) == {4: 1, 5: 1}
    assert loads_per_batch([*rows, (f"airflow:{run}-x", 4, "loaded")], run) == {4: 2, 5: 1}
