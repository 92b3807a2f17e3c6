"""Distinct rows handed out to each group: what a client can have stored, at most and at least.

A response is a random sample of the group's current batch, so a client sees many rows twice.
What it can store is the set of distinct records it was served (content ids of
api_data.batches: equal records count once, as the training table's unique key counts them).
`ServedRows` keeps that set per group, so a client's store can be compared with what the API
says it handed out, not with the client's own log.

The count lives in this process's memory and starts at zero when it starts (`since`): it is
not in the state file, which is written on batch changes only, while this changes on every
request. A restart of the group (`/restart_data_generation`) does not reset it: rows served
before a restart stay served, and a client's store keeps them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np


class ServedRows:
    """For groups 1..`groups`: which of the `records` distinct records each has been served."""

    def __init__(
        self, *, groups: int, records: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.groups = groups
        self.records = records
        self.since = clock()
        self._lock = threading.Lock()
        # One flag per record, made at a group's first response (a group that never asks
        # costs nothing).
        self._seen: dict[int, np.ndarray] = {}
        self._counts = dict.fromkeys(range(1, groups + 1), 0)

    def record(self, group: int, content_ids: np.ndarray) -> int:
        """Count the records of one response; returns the group's distinct total."""
        with self._lock:
            seen = self._seen.get(group)
            if seen is None:
                seen = self._seen[group] = np.zeros(self.records, dtype=bool)
            new = np.unique(content_ids[~seen[content_ids]])
            seen[new] = True
            self._counts[group] += int(new.size)
            return self._counts[group]

    def distinct(self, group: int) -> int:
        return self._counts[group]
