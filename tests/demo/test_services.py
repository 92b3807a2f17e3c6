"""The demo's process handling: children (and their children) never outlive it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from forest_mlops.process import ProcessGroup, ServiceError, pick_port, port_is_free


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


SPAWN_GRANDCHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def _grandchild_pid(log: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text().strip() if log.exists() else ""
        if text:
            return int(text.splitlines()[0])
        time.sleep(0.05)
    raise AssertionError(f"no grandchild pid in {log}")


def test_leaving_the_group_on_an_error_stops_children_and_grandchildren(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    with pytest.raises(RuntimeError, match="boom"), ProcessGroup() as processes:
        child = processes.start("spawner", [sys.executable, "-c", SPAWN_GRANDCHILD], log_path=log)
        grandchild = _grandchild_pid(log)
        assert _alive(child.pid) and _alive(grandchild)
        raise RuntimeError("boom")
    assert not _alive(child.pid)
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_a_dead_service_is_reported_with_its_log(tmp_path: Path) -> None:
    with ProcessGroup() as processes:
        processes.start(
            "crasher",
            [sys.executable, "-c", "import sys; print('cannot bind'); sys.exit(3)"],
            log_path=tmp_path / "crasher.log",
        )
        time.sleep(0.5)
        with pytest.raises(
            ServiceError, match=r"crasher exited unexpectedly with code 3(.|\n)*cannot bind"
        ):
            for _ in range(50):
                processes.check_services()
                time.sleep(0.1)


def test_wait_http_fails_fast_when_the_process_exits(tmp_path: Path) -> None:
    with ProcessGroup() as processes:
        process = processes.start(
            "exits",
            [sys.executable, "-c", "print('bad config')"],
            log_path=tmp_path / "exits.log",
        )
        started = time.monotonic()
        with pytest.raises(
            ServiceError, match=r"exited with code 0 while starting(.|\n)*bad config"
        ):
            process.wait_http("http://127.0.0.1:9/", timeout=60)
        assert time.monotonic() - started < 30


def test_pick_port_avoids_a_busy_port() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert not port_is_free("127.0.0.1", taken)
        chosen = pick_port("127.0.0.1", taken)
        assert chosen != taken
        assert port_is_free("127.0.0.1", chosen)


def test_scrubbed_variables_do_not_reach_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor")
    monkeypatch.setenv("FOREST_KEEP_ME", "kept")
    log = tmp_path / "env.log"
    script = (
        "import os; print(sorted(k for k in os.environ if k.startswith(('AIRFLOW', 'FOREST'))))"
    )
    with ProcessGroup() as processes:
        child = processes.start(
            "env",
            [sys.executable, "-c", script],
            log_path=log,
            env={"AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
            service=False,
            scrub_prefixes=("AIRFLOW__",),
        )
        assert child.wait(timeout=30) == 0
    names = log.read_text()
    assert "AIRFLOW__CORE__LOAD_EXAMPLES" in names and "FOREST_KEEP_ME" in names
    assert "AIRFLOW__CORE__EXECUTOR" not in names
