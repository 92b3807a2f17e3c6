"""GroupStates alone: transitions by a controlled clock, persistence, corrupt files, locks."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from api_data.state import AllDataCollected, GroupState, GroupStates


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock, **kwargs: object) -> GroupStates:
    options: dict[str, object] = {"groups": 3, "batches": 4, "window": 10.0}
    options.update(kwargs)
    return GroupStates(path=tmp_path / "state.json", clock=clock, **options)  # type: ignore[arg-type]


def test_transitions_follow_the_window(tmp_path: Path) -> None:
    clock = Clock()
    states = make(tmp_path, clock)
    assert states.get(1) == GroupState()
    assert states.current_batch(1) == 0
    clock.now += 9.999
    assert states.current_batch(1) == 0
    clock.now += 0.001  # exactly one window after the change
    assert states.current_batch(1) == 1
    clock.now += 5
    assert states.current_batch(1) == 1
    assert states.get(1) == GroupState(1, 1_010.0)
    clock.now += 100  # a long pause moves one batch on, not several
    assert states.current_batch(1) == 2
    assert states.get(2) == GroupState()


def test_after_the_last_window_every_request_is_refused_until_restart(tmp_path: Path) -> None:
    clock = Clock()
    states = make(tmp_path, clock)
    for expected in range(4):
        assert states.current_batch(2) == expected
        clock.now += 10
    with pytest.raises(AllDataCollected, match="All data has been collected for group 2"):
        states.current_batch(2)
    with pytest.raises(AllDataCollected):
        states.current_batch(2)
    assert states.status(2) == {"status": "all data collected", "next_change_at": None}
    states.restart(2)
    assert states.status(2) == {"status": "not started", "next_change_at": None}
    assert states.current_batch(2) == 0
    assert states.status(2) == {"status": "serving", "next_change_at": clock.now + 10}


def test_zero_window_moves_on_every_request(tmp_path: Path) -> None:
    states = make(tmp_path, Clock(), window=0.0, batches=2)
    assert [states.current_batch(1), states.current_batch(1)] == [0, 1]
    with pytest.raises(AllDataCollected):
        states.current_batch(1)


@pytest.mark.parametrize("group", [0, 4, -1])
def test_unknown_group_is_refused(tmp_path: Path, group: int) -> None:
    states = make(tmp_path, Clock())
    with pytest.raises(ValueError, match="between 1 and 3"):
        states.current_batch(group)
    with pytest.raises(ValueError):
        states.restart(group)


def test_state_is_written_on_every_change_and_restored(tmp_path: Path) -> None:
    clock = Clock()
    states = make(tmp_path, clock)
    states.current_batch(1)
    clock.now += 10
    states.current_batch(1)
    states.current_batch(3)
    document = json.loads((tmp_path / "state.json").read_text())
    assert document["groups"]["1"] == {"batch_number": 1, "changed_at": 1_010.0}
    assert document["groups"]["2"] == {"batch_number": None, "changed_at": None}
    restored = make(tmp_path, clock)
    assert restored.snapshot() == states.snapshot()
    clock.now += 10
    assert restored.current_batch(1) == 2  # the window counts from the saved change time
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp files left


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    states = GroupStates(groups=1, batches=2, window=1.0, clock=Clock())
    assert states.current_batch(1) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b'{"version": 1, "groups": {"1": {"batch_number": 1}}}',
        b'{"version": 2, "groups": {}}',
        b'{"version": 1, "groups": {"1": {"batch_number": "1", "changed_at": 5.0}}}',
        b'{"version": 1, "groups": {"x": {"batch_number": 1, "changed_at": 5.0}}}',
        b"[]",
    ],
)
def test_corrupt_state_is_moved_aside_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "state.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="api_data.state"):
        states = make(tmp_path, Clock())
    assert all(s == GroupState() for s in states.snapshot().values())
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert "is not a valid state file" in caplog.text
    assert "moved to" in caplog.text
    assert states.current_batch(1) == 0  # and the fresh state is saved over it
    assert json.loads((tmp_path / "state.json").read_text())["groups"]["1"]["batch_number"] == 0


def test_groups_the_config_no_longer_has_are_dropped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    document = {
        "version": 1,
        "groups": {
            "1": {"batch_number": 2, "changed_at": 5.0},
            "2": {"batch_number": 9, "changed_at": 5.0},  # more batches than configured
            "3": {"batch_number": None, "changed_at": 5.0},  # inconsistent
            "7": {"batch_number": 1, "changed_at": 5.0},  # a group that is not served
        },
    }
    (tmp_path / "state.json").write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING, logger="api_data.state"):
        states = make(tmp_path, Clock())
    assert states.get(1) == GroupState(2, 5.0)
    assert states.get(2) == GroupState()
    assert states.get(3) == GroupState()
    assert "group 7 is not served" in caplog.text
    assert "outside 0..3" in caplog.text


def test_a_failed_write_does_not_move_the_group(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    states = GroupStates(groups=1, batches=3, window=1.0, path=state_dir / "state.json")
    state_dir.write_text("a file where the state directory should be")
    with pytest.raises(OSError):
        states.current_batch(1)
    assert states.get(1) == GroupState()  # a batch that could not be recorded is not served


class SlowClock:
    """Reads the time slowly, widening the read-decide-write window that the lock guards."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        value = self.now
        time.sleep(0.002)
        return value


def test_concurrent_threads_see_each_transition_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api_data.state")
    clock = SlowClock()
    states = GroupStates(groups=1, batches=10, window=10.0, path=tmp_path / "s.json", clock=clock)
    results: list[int] = []
    lock = threading.Lock()

    def ask() -> None:
        batch = states.current_batch(1)
        with lock:
            results.append(batch)

    for step in range(3):
        clock.now = step * 10.0
        threads = [threading.Thread(target=ask) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(results) == [0] * 20 + [1] * 20 + [2] * 20
    # One recorded change per window: without the lock every thread would make its own.
    changes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("group 1:")]
    assert changes == ["group 1: batch 0", "group 1: batch 1", "group 1: batch 2"]
    assert states.get(1) == GroupState(2, 20.0)
