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
    requests: int = 0  # GET /data calls that served this batch
    offered: int | None = None  # rows the batch has, when the API says

    @property
    def collected_fraction(self) -> float | None:
        """New distinct rows stored by this attempt, as a share of the rows the batch has."""
        return self.inserted / self.offered if self.offered else None


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
            "batches": [
                {**asdict(b), "collected_fraction": _rounded(b.collected_fraction)}
                for b in self.batches
            ],
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
    has_offered = _has_rows_offered(t.log)
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
                requests=batch.requests,
                offered=batch.offered,
            )
            results.append(result)
            figures = {"rows_offered": result.offered} if has_offered else {}
            conn.execute(
                sa.insert(t.log),
                {
                    **figures,
                    "ingestion_run_id": run_id,
                    "group_number": validated.group_number,
                    "batch_number": batch.batch_number,
                    "requests": result.requests,
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
    for b in results:
        log.info(
            "batch %s: %s of its %s rows stored (%s requests, %s rows served)",
            b.batch_number,
            b.inserted,
            "?" if b.offered is None else b.offered,
            b.requests,
            b.received,
        )
    return outcome


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _has_rows_offered(log_table: sa.Table) -> bool:
    """False on an ingestion_log made before the column existed and not upgraded yet.

    The collection keeps working there (the figure is lost, not the data); the warning says
    what the upgrade needs. apply_schema adds the column (the CLI and the demo run it).
    """
    if "rows_offered" in log_table.c:
        return True
    log.warning(
        "ingestion_log has no rows_offered column (a schema from before it): the rows each "
        "batch offered are not recorded. Upgrade: ALTER TABLE ingestion_log ADD COLUMN "
        "rows_offered INT NULL (docs/INGESTION.md)"
    )
    return False


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
                requests=int(r["requests"]),
                offered=None if r.get("rows_offered") is None else int(r["rows_offered"]),
            )
            for r in loaded
        ],
        complete=any(r["status"] == STATUS_COMPLETE for r in rows),
    )
