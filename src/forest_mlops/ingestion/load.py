"""Land validated rows in ONE transaction: data (duplicates skipped), rejected rows, the log.

Either everything of a window is written or nothing is: a crash half-way leaves the tables as
they were (and, on the Airflow path, the staged input for the retry).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field

import orjson
import sqlalchemy as sa

from forest_mlops.database import insert_records, tables, utcnow
from forest_mlops.ingestion.validate import Validated

log = logging.getLogger(__name__)

STATUS_LOADED = "loaded"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class BatchResult:
    batch_number: int
    received: int
    inserted: int
    duplicate: int
    rejected: int


@dataclass(frozen=True)
class LoadResult:
    run_id: str
    group_number: int
    batches: list[BatchResult] = field(default_factory=list)
    complete: bool = False

    @property
    def inserted(self) -> int:
        return sum(b.inserted for b in self.batches)

    @property
    def received(self) -> int:
        return sum(b.received for b in self.batches)

    @property
    def duplicate(self) -> int:
        return sum(b.duplicate for b in self.batches)

    @property
    def rejected(self) -> int:
        return sum(b.rejected for b in self.batches)

    def summary(self) -> dict[str, object]:
        """Small, JSON-able: what travels through XCom and the CLI's output."""
        return {
            "run_id": self.run_id,
            "group_number": self.group_number,
            "received": self.received,
            "inserted": self.inserted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "complete": self.complete,
            "batches": [asdict(b) for b in self.batches],
        }


def load(
    engine: sa.Engine,
    run_id: str,
    validated: Validated,
    *,
    delete_staging: bool = False,
) -> LoadResult:
    """Insert the valid rows (skipping duplicates), the rejected rows and the log rows.

    With delete_staging, the run's staged rows are removed in the same transaction.
    """
    t = tables(engine)
    results: list[BatchResult] = []
    finished_at = utcnow()
    with engine.begin() as conn:
        for batch in validated.batches:
            inserted = insert_records(
                conn,
                batch.records,
                batch_number=batch.batch_number,
                group_number=validated.group_number,
                run_id=run_id,
                hashes=batch.hashes,
            )
            if batch.rejected:
                conn.execute(
                    sa.insert(t.rejected),
                    [
                        {
                            "ingestion_run_id": run_id,
                            "group_number": validated.group_number,
                            "batch_number": batch.batch_number,
                            "response_index": r.response_index,
                            "row_index": r.row_index,
                            "raw_row": orjson.dumps(r.raw).decode(),
                            "reason": r.reason[:1000],
                            "rejected_at": finished_at,
                        }
                        for r in batch.rejected
                    ],
                )
            result = BatchResult(
                batch_number=batch.batch_number,
                received=batch.received,
                inserted=inserted,
                duplicate=batch.valid - inserted,
                rejected=len(batch.rejected),
            )
            results.append(result)
            conn.execute(
                sa.insert(t.log),
                {
                    "ingestion_run_id": run_id,
                    "group_number": validated.group_number,
                    "batch_number": batch.batch_number,
                    "requests": validated.requests,
                    "rows_received": result.received,
                    "rows_inserted": result.inserted,
                    "rows_duplicate": result.duplicate,
                    "rows_rejected": result.rejected,
                    "status": STATUS_LOADED,
                    "synthetic": batch.synthetic,
                    "message": None,
                    "started_at": validated.started_at,
                    "finished_at": finished_at,
                },
            )
        if validated.complete:
            _insert_status(
                conn,
                run_id,
                validated.group_number,
                STATUS_COMPLETE,
                validated.complete_message,
                validated.started_at,
            )
        if delete_staging:
            conn.execute(sa.delete(t.staging).where(t.staging.c.ingestion_run_id == run_id))
    outcome = LoadResult(run_id, validated.group_number, results, validated.complete)
    log.info(
        "run %s group %s: %s received, %s inserted, %s duplicate, %s rejected",
        run_id,
        outcome.group_number,
        outcome.received,
        outcome.inserted,
        outcome.duplicate,
        outcome.rejected,
    )
    return outcome


def _insert_status(
    conn: sa.Connection,
    run_id: str,
    group_number: int,
    status: str,
    message: str | None,
    started_at: dt.datetime,
) -> None:
    conn.execute(
        sa.insert(tables(conn.engine).log),
        {
            "ingestion_run_id": run_id,
            "group_number": group_number,
            "batch_number": None,
            "requests": 0,
            "rows_received": 0,
            "rows_inserted": 0,
            "rows_duplicate": 0,
            "rows_rejected": 0,
            "status": status,
            "synthetic": False,
            "message": (message or "")[:1000],
            "started_at": started_at,
            "finished_at": utcnow(),
        },
    )


def record_status(
    engine: sa.Engine,
    run_id: str,
    group_number: int,
    status: str,
    message: str | None,
    started_at: dt.datetime,
) -> None:
    """A log row for an attempt that landed no data ('complete' or 'failed')."""
    with engine.begin() as conn:
        _insert_status(conn, run_id, group_number, status, message, started_at)


def collection_complete(engine: sa.Engine, group_number: int) -> bool:
    """True once the API has said "all data collected" for the group (a 'complete' log row)."""
    t = tables(engine).log
    query = (
        sa.select(t.c.id)
        .where(t.c.group_number == group_number, t.c.status == STATUS_COMPLETE)
        .limit(1)
    )
    with engine.connect() as conn:
        return conn.execute(query).first() is not None


def holds_synthetic_data(engine: sa.Engine) -> bool:
    """True when any loaded batch came from an API serving a generated (synthetic) dataset."""
    t = tables(engine).log
    query = sa.select(t.c.id).where(t.c.status == STATUS_LOADED, t.c.synthetic.is_(True)).limit(1)
    with engine.connect() as conn:
        return conn.execute(query).first() is not None


def loaded_result(engine: sa.Engine, run_id: str) -> LoadResult | None:
    """The result of a run already loaded (from its log rows), or None."""
    t = tables(engine).log
    query = sa.select(t).where(t.c.ingestion_run_id == run_id).order_by(t.c.id)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    loaded = [r for r in rows if r["status"] == STATUS_LOADED]
    if not loaded:
        return None
    return LoadResult(
        run_id=run_id,
        group_number=int(loaded[0]["group_number"]),
        batches=[
            BatchResult(
                batch_number=int(r["batch_number"]),
                received=int(r["rows_received"]),
                inserted=int(r["rows_inserted"]),
                duplicate=int(r["rows_duplicate"]),
                rejected=int(r["rows_rejected"]),
            )
            for r in loaded
        ],
        complete=any(r["status"] == STATUS_COMPLETE for r in rows),
    )
