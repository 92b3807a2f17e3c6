"""Optional log of every prediction in the `inference_log` table, written off the request path.

A request only appends one item (its columns, probabilities and model) to a bounded queue; a
daemon thread expands items into rows and inserts them in batches of up to `batch_rows` (the
items that queued up while the previous insert ran). When the queue is full or the database
keeps failing, rows are dropped and counted (forest_inference_log_dropped_rows_total): the log
is an audit trail for drift analysis and must never slow down or fail a prediction. The table
is defined in mysql-init/ and its columns in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from tenacity import Retrying, stop_after_attempt, wait_exponential

from forest_mlops import database, schema

log = logging.getLogger(__name__)

_COLUMNS = (
    "predicted_at",
    "model_name",
    "model_version",
    *schema.FEATURE_COLUMNS,
    "cover_type",
    "probability",
    "latency_ms",
)
# Insert by column name without reflection: the service's database user may only INSERT.
_TABLE = sa.table(database.INFERENCE_LOG_TABLE, *(sa.column(c) for c in _COLUMNS))


@dataclass(frozen=True)
class LoggedRequest:
    columns: Mapping[str, Sequence[Any]]
    probabilities: np.ndarray[Any, Any]
    model_name: str
    model_version: str
    latency_ms: float
    predicted_at: dt.datetime  # naive UTC, as DATETIME columns hold it


class InferenceLogWriter:
    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 100_000,
        batch_rows: int = 2_000,
        idle_seconds: float = 0.5,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = database.create_engine(url)
        self.batch_rows = batch_rows
        self.idle_seconds = idle_seconds
        self._queue: queue.Queue[LoggedRequest] = queue.Queue(maxsize=queue_size)
        self._on_drop = on_drop or (lambda n: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self.written = 0  # rows inserted so far

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: LoggedRequest) -> None:
        """Queue one request's predictions; never blocks."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._on_drop(len(item.probabilities))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.engine.dispose()

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            items = self._take(timeout=0.1 if stopping else self.idle_seconds)
            if items:
                self._write(items)
            elif stopping:
                return

    def _take(self, timeout: float) -> list[LoggedRequest]:
        """Wait for one item, then take whatever else is queued (up to batch_rows rows).

        Items pile up while the previous insert runs, so batches grow with the load.
        """
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        items = [first]
        rows = len(first.probabilities)
        while rows < self.batch_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            rows += len(item.probabilities)
        return items

    def _write(self, items: list[LoggedRequest]) -> None:
        rows = [row for item in items for row in _rows(item)]
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(3),
                wait=wait_exponential(multiplier=0.5, max=4),
                reraise=True,
            ):
                with attempt, self.engine.begin() as conn:
                    conn.execute(sa.insert(_TABLE), rows)
        except Exception:
            log.exception("dropping %d inference log rows after 3 failed inserts", len(rows))
            self._on_drop(len(rows))
            return
        self.written += len(rows)


def _rows(item: LoggedRequest) -> list[dict[str, Any]]:
    class_ids = item.probabilities.argmax(axis=1)
    best = item.probabilities[np.arange(len(class_ids)), class_ids]
    constants = {
        "predicted_at": item.predicted_at,
        "model_name": item.model_name,
        "model_version": item.model_version,
        "latency_ms": item.latency_ms,
    }
    features = [item.columns[c] for c in schema.FEATURE_COLUMNS]
    return [
        {
            **constants,
            **dict(zip(schema.FEATURE_COLUMNS, values, strict=True)),
            "cover_type": int(class_id),
            "probability": float(p),
        }
        for *values, class_id, p in zip(*features, class_ids, best, strict=True)
    ]
