"""The training rows as a snapshot: what one training run reads, however many tasks read it.

forest_cover_data only grows (the ingestion appends; ids are AUTO_INCREMENT), so "the rows with
id <= max_id" names a fixed set of rows. `take_snapshot` records that bound with the row count,
the data fingerprint and the batches; `read_snapshot` reads the same rows again in another task
(another pod) and checks the fingerprint, so every step of a run trains and scores on exactly
the rows that prepare recorded, even while ingestion keeps adding batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from forest_mlops import database, schema
from forest_mlops.training import split

_INT_COLUMNS: Final = (*schema.NUMERIC_COLUMNS, schema.TARGET_COLUMN)
LINEAGE_COLUMNS: Final = ("group_number", "batch_number")


class SnapshotChanged(RuntimeError):
    """Rows recorded by prepare are no longer in the table as they were."""


@dataclass(frozen=True)
class Snapshot:
    """JSON-friendly (Airflow XCom) description of the rows a training run uses."""

    max_id: int
    rows: int
    data_hash: str
    batches: str
    synthetic: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Snapshot:
        return cls(**values)


def _read(engine: sa.Engine, max_id: int | None) -> pd.DataFrame:
    data = database.tables(engine).data
    columns = [*schema.COLUMNS, *LINEAGE_COLUMNS]
    query = sa.select(*(data.c[c] for c in columns)).order_by(data.c.id)
    if max_id is not None:
        query = query.where(data.c.id <= max_id)
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in (*_INT_COLUMNS, *LINEAGE_COLUMNS):
        frame[column] = frame[column].astype("int64")
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame


def describe_batches(frame: pd.DataFrame) -> str:
    """Batches included, compactly: `group 1: 0-4,7; group 2: 0` (empty when no rows)."""
    parts = []
    for group, batches in frame.groupby("group_number")["batch_number"]:
        parts.append(f"group {group}: {_ranges(sorted(set(batches.tolist())))}")
    return "; ".join(parts)


def _ranges(numbers: list[int]) -> str:
    spans: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        spans.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ",".join(spans)


def take_snapshot(engine: sa.Engine, *, synthetic: bool) -> tuple[Snapshot, pd.DataFrame]:
    """Record the current rows (and return them, so the caller need not read them again).

    The snapshot is synthetic when the caller says so (FOREST_DATA_SYNTHETIC) or when the
    ingestion log shows a batch served from a generated dataset.
    """
    from forest_mlops.ingestion import holds_synthetic_data

    data = database.tables(engine).data
    with engine.connect() as conn:
        max_id = conn.execute(sa.select(sa.func.max(data.c.id))).scalar_one()
    frame = _read(engine, int(max_id or 0))
    hashes = split.row_hashes(frame)
    snapshot = Snapshot(
        max_id=int(max_id or 0),
        rows=len(frame),
        data_hash=split.data_fingerprint(hashes),
        batches=describe_batches(frame) if len(frame) else "",
        synthetic=synthetic or holds_synthetic_data(engine),
    )
    return snapshot, frame


def read_snapshot(engine: sa.Engine, snapshot: Snapshot) -> tuple[pd.DataFrame, list[str]]:
    """The snapshot's rows and their row hashes; SnapshotChanged if they are not the same rows."""
    frame = _read(engine, snapshot.max_id)
    hashes = split.row_hashes(frame)
    fingerprint = split.data_fingerprint(hashes)
    if len(frame) != snapshot.rows or fingerprint != snapshot.data_hash:
        raise SnapshotChanged(
            f"forest_cover_data rows with id <= {snapshot.max_id} changed since prepare "
            f"({snapshot.rows} rows, hash {snapshot.data_hash[:12]}; now {len(frame)} rows, "
            f"hash {fingerprint[:12]}): rerun the whole training run"
        )
    return frame, hashes
