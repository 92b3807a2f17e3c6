"""Progress and completion as the demo reads them from the ingestion's tables (real SQLite)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from forest_mlops import database
from forest_mlops.demo.collection import read_collection

ROW = ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "4"]


def _row(elevation: int) -> list[str]:
    return [str(elevation), *ROW[1:]]


def _log(engine: sa.Engine, *, group: int, batch: int | None, status: str, **counts: int) -> None:
    now = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(database.tables(engine).log).values(
                ingestion_run_id=f"run-{batch}-{status}",
                group_number=group,
                batch_number=batch,
                requests=counts.get("requests", 0),
                rows_received=counts.get("received", 0),
                rows_inserted=counts.get("inserted", 0),
                rows_duplicate=counts.get("duplicate", 0),
                rows_rejected=counts.get("rejected", 0),
                status=status,
                started_at=now,
                finished_at=now,
            )
        )


def test_counts_per_batch_and_completion(tmp_path: Path) -> None:
    engine = database.create_engine(f"sqlite:///{tmp_path / 'train.db'}")
    database.apply_schema(engine)
    assert read_collection(engine, 1).batches == []

    database.insert_rows(engine, [_row(2000 + i) for i in range(5)], batch_number=0, group_number=1)
    database.insert_rows(engine, [_row(3000 + i) for i in range(3)], batch_number=1, group_number=1)
    database.insert_rows(engine, [_row(4000)], batch_number=0, group_number=2)  # another group
    _log(engine, group=1, batch=0, status="loaded", requests=3, received=9, inserted=5)
    _log(engine, group=1, batch=1, status="loaded", requests=3, received=4, inserted=3, rejected=1)

    state = read_collection(engine, 1)
    assert [(b.batch, b.requests, b.received, b.stored, b.rejected) for b in state.batches] == [
        (0, 3, 9, 5, 0),
        (1, 3, 4, 3, 1),
    ]
    assert state.stored_rows == 8 and state.received_rows == 13
    assert state.last_attempt_at == dt.datetime(2026, 1, 1)
    assert not state.complete
    assert not state.has_all_batches(2 + 1)
    assert state.has_all_batches(2)

    _log(engine, group=1, batch=None, status="complete")
    state = read_collection(engine, 1)
    assert state.complete and state.has_all_batches(10)
    assert not read_collection(engine, 2).complete
