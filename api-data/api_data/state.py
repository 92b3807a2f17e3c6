"""Per-group batch state: which batch a group is on and when it last changed.

Every change is written to a JSON file atomically (a temporary file in the same directory,
fsync, then os.replace), so a crash leaves either the old or the new state, never half of
one; the state is read back on start. A file that cannot be read or does not describe this
API's state is moved aside (`<file>.corrupt-<UTC time>`) with a logged warning and the API
starts fresh rather than refusing to start.

One lock covers the read-decide-write of a request, so concurrent requests for a group see
each transition exactly once: no batch is skipped or repeated.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from forest_mlops.files import write_atomically

logger = logging.getLogger(__name__)

STATE_VERSION = 1


class AllDataCollected(Exception):
    """The group has had every batch, each for its full window."""

    def __init__(self, group: int, batches: int) -> None:
        self.group = group
        self.batches = batches
        super().__init__(
            f"All data has been collected for group {group}: its {batches} batches have each "
            f"been served for their full window. Call /restart_data_generation?group_number="
            f"{group} to start again from batch 0."
        )


@dataclass(frozen=True)
class GroupState:
    """`batch_number` None means the group has not asked yet; `changed_at` is epoch seconds."""

    batch_number: int | None = None
    changed_at: float | None = None


class _GroupRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    batch_number: int | None
    changed_at: float | None


class _StateFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    groups: dict[int, _GroupRecord]


class GroupStates:
    """The state of groups 1..`groups` over `batches` batches, each current for `window` s."""

    def __init__(
        self,
        *,
        groups: int,
        batches: int,
        window: float,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Wall-clock time, not monotonic: a window must keep running across a restart.
        self.groups = groups
        self.batches = batches
        self.window = window
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[int, GroupState] = dict.fromkeys(range(1, groups + 1), GroupState())
        if path is not None:
            self._restore(path)

    def check_group(self, group: int) -> None:
        if not 1 <= group <= self.groups:
            raise ValueError(f"group_number must be between 1 and {self.groups}, got {group}")

    def current_batch(self, group: int) -> int:
        """The batch to serve to `group` now, moving it on when its window has passed.

        Raises AllDataCollected after the last batch's window, ValueError for a bad group.
        """
        self.check_group(group)
        with self._lock:
            state = self._states[group]
            now = self._clock()
            if state.batch_number is None or state.changed_at is None:
                batch = 0
            elif now - state.changed_at < self.window:
                return state.batch_number
            elif state.batch_number + 1 >= self.batches:
                raise AllDataCollected(group, self.batches)
            else:
                batch = state.batch_number + 1
            self._set(group, GroupState(batch, now))
            return batch

    def restart(self, group: int) -> None:
        """Put `group` back in its initial state: its next request serves batch 0."""
        self.check_group(group)
        with self._lock:
            self._set(group, GroupState())

    def get(self, group: int) -> GroupState:
        self.check_group(group)
        return self._states[group]

    def status(self, group: int, now: float | None = None) -> dict[str, object]:
        """A group's state for people: where it is and when its next batch becomes due."""
        state = self.get(group)
        now = self._clock() if now is None else now
        if state.batch_number is None or state.changed_at is None:
            return {"status": "not started", "next_change_at": None}
        due = state.changed_at + self.window
        if state.batch_number + 1 >= self.batches and now >= due:
            return {"status": "all data collected", "next_change_at": None}
        return {"status": "serving", "next_change_at": due}

    def snapshot(self) -> dict[int, GroupState]:
        with self._lock:
            return dict(self._states)

    def _set(self, group: int, state: GroupState) -> None:
        previous = self._states[group]
        self._states[group] = state
        try:
            self._persist()
        except OSError:
            # A batch that could not be recorded must not be served: keep the old state.
            self._states[group] = previous
            raise
        logger.info("group %d: batch %s", group, state.batch_number)

    def _document(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "groups": {
                str(group): {"batch_number": s.batch_number, "changed_at": s.changed_at}
                for group, s in sorted(self._states.items())
            },
        }

    def _persist(self) -> None:
        if self.path is None:
            return
        write_atomically(self.path, json.dumps(self._document(), indent=1).encode())

    def _restore(self, path: Path) -> None:
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            logger.info("no state file at %s: every group starts at batch 0", path)
            return
        except OSError as exc:
            self._set_aside(path, f"cannot be read ({exc})")
            return
        try:
            document = _StateFile.model_validate_json(text)
            if document.version != STATE_VERSION:
                raise ValueError(f"version {document.version}, expected {STATE_VERSION}")
        except (ValidationError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._set_aside(path, f"is not a valid state file ({reason})")
            return
        for group, record in document.groups.items():
            if group not in self._states:
                logger.warning("state file %s: group %d is not served (1..%d): dropped",
                               path, group, self.groups)  # fmt: skip
                continue
            if record.batch_number is not None and not 0 <= record.batch_number < self.batches:
                logger.warning(
                    "state file %s: group %d was on batch %d, outside 0..%d: restarted",
                    path, group, record.batch_number, self.batches - 1,
                )  # fmt: skip
                continue
            if (record.batch_number is None) != (record.changed_at is None):
                logger.warning("state file %s: group %d is inconsistent: restarted", path, group)
                continue
            self._states[group] = GroupState(record.batch_number, record.changed_at)
        logger.info("restored group state from %s", path)

    def _set_aside(self, path: Path, reason: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        try:
            os.replace(path, aside)
        except OSError as exc:
            logger.warning(
                "state file %s %s and could not be moved aside (%s): starting fresh; it will "
                "be overwritten at the next change",
                path, reason, exc,
            )  # fmt: skip
            return
        logger.warning(
            "state file %s %s: moved to %s, every group starts at batch 0", path, reason, aside
        )
