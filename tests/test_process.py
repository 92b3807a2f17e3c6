"""ProcessGroup stops its children together: a demo Ctrl-C waits one grace period, not one each."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from forest_mlops.process import ManagedProcess, ProcessGroup

# A child that ignores SIGTERM and says so once the handler is in place: only SIGKILL ends it.
STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)
# A child that exits on SIGTERM (Python's default action).
OBEDIENT = "import time\nprint('ready', flush=True)\ntime.sleep(600)\n"


def _wait_ready(log: Path) -> None:
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text():
        assert time.monotonic() < deadline, f"{log.name} never started"
        time.sleep(0.05)


def test_stop_all_runs_the_grace_periods_concurrently(tmp_path: Path) -> None:
    grace = 2.0
    group = ProcessGroup()
    children = []
    for n in range(3):
        log = tmp_path / f"stubborn-{n}.log"
        children.append(
            group.start(
                f"stubborn-{n}", [sys.executable, "-c", STUBBORN], log_path=log, stop_grace=grace
            )
        )
        _wait_ready(log)
    obedient_log = tmp_path / "obedient.log"
    obedient = group.start(
        "obedient", [sys.executable, "-c", OBEDIENT], log_path=obedient_log, stop_grace=grace
    )
    _wait_ready(obedient_log)

    started = time.monotonic()
    group.stop_all()
    took = time.monotonic() - started

    assert not any(child.running() for child in [*children, obedient])
    # The three stubborn children needed SIGKILL (killed by a signal: negative return code)...
    assert [child.proc.returncode for child in children] == [-9, -9, -9]
    # ...and the obedient one stopped on SIGTERM.
    assert obedient.proc.returncode == -15
    # One grace period for all of them, not three in a row (6 s and more).
    assert grace <= took < 2 * grace, took


def test_a_stop_cut_short_kills_every_child_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C while the children's grace periods run: none is left behind running."""
    group = ProcessGroup()
    children = []
    for n in range(3):
        log = tmp_path / f"stubborn-{n}.log"
        children.append(
            group.start(
                f"stubborn-{n}", [sys.executable, "-c", STUBBORN], log_path=log, stop_grace=60
            )
        )
        _wait_ready(log)
    interrupted = []
    real_finish = ManagedProcess.finish_stop

    def interrupt_once(self: ManagedProcess, deadline: float) -> None:
        if not interrupted:
            interrupted.append(self.name)
            raise KeyboardInterrupt
        real_finish(self, deadline)

    monkeypatch.setattr(ManagedProcess, "finish_stop", interrupt_once)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        group.stop_all()
    took = time.monotonic() - started

    assert interrupted == ["stubborn-2"]  # newest first, as stop_all waits
    # SIGTERM ignored and the wait cut short: all three were SIGKILLed on the way out...
    assert [child.proc.returncode for child in children] == [-9, -9, -9]
    assert not group.has_running()
    # ...without sitting through the 60 s grace period.
    assert took < 30, took
