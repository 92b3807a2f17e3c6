"""Hand fetched and validated rows from one Airflow task to the next through MySQL.

Each task of the extraction DAG may run in its own pod, so nothing travels on local disk and
XCom carries only the run id and counts. The rows go through the `ingestion_staging` table
(mysql-init/01-train-data-schema.sql explains the layout): one row per /data response and stage,
its payload JSON. A retried task replaces its own stage; the load deletes the run's staging in
the transaction that lands the data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import orjson
import sqlalchemy as sa

from forest_mlops import schema
from forest_mlops.database import tables, utcnow
from forest_mlops.ingestion.fetch import Fetched, Response
from forest_mlops.ingestion.validate import BatchRows, Rejected, Validated

STAGE_FETCHED: Final = "fetched"
STAGE_VALIDATED: Final = "validated"
# Staged runs older than this were abandoned (their DAG run failed for good before loading).
STALE_AFTER: Final = dt.timedelta(days=1)


class StagingMissingError(LookupError):
    """No staged rows for the run at the expected stage."""


def _replace_stage(engine: sa.Engine, run_id: str, stage: str, parts: list[dict[str, Any]]) -> None:
    t = tables(engine).staging
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(sa.delete(t).where(t.c.ingestion_run_id == run_id, t.c.stage == stage))
        conn.execute(
            sa.insert(t),
            [
                {**part, "ingestion_run_id": run_id, "stage": stage, "created_at": now}
                for part in parts
            ],
        )


def _read_stage(engine: sa.Engine, run_id: str, stage: str) -> list[sa.RowMapping]:
    t = tables(engine).staging
    query = (
        sa.select(t)
        .where(t.c.ingestion_run_id == run_id, t.c.stage == stage)
        .order_by(t.c.response_index)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query).mappings().all())
    if not rows:
        raise StagingMissingError(f"nothing staged for run {run_id!r} at stage {stage!r}")
    return rows


def delete_stale(engine: sa.Engine, older_than: dt.timedelta = STALE_AFTER) -> int:
    t = tables(engine).staging
    with engine.begin() as conn:
        result = conn.execute(sa.delete(t).where(t.c.created_at < utcnow() - older_than))
    return int(result.rowcount)


def save_fetched(engine: sa.Engine, run_id: str, fetched: Fetched) -> None:
    meta = {
        "started_at": fetched.started_at.isoformat(),
        "complete": fetched.complete,
        "complete_message": fetched.complete_message,
        "offered": {str(batch): rows for batch, rows in fetched.offered.items()},
    }
    _replace_stage(
        engine,
        run_id,
        STAGE_FETCHED,
        [
            {
                "response_index": i,
                "group_number": fetched.group_number,
                "batch_number": r.batch_number,
                "payload": orjson.dumps(
                    {**meta, "rows": r.rows, "synthetic": r.synthetic}
                ).decode(),
            }
            for i, r in enumerate(fetched.responses)
        ],
    )


def read_fetched(engine: sa.Engine, run_id: str) -> Fetched:
    rows = _read_stage(engine, run_id, STAGE_FETCHED)
    payloads = [orjson.loads(r["payload"]) for r in rows]
    first = payloads[0]
    return Fetched(
        group_number=int(rows[0]["group_number"]),
        responses=[
            Response(int(r["batch_number"]), p["rows"], bool(p.get("synthetic")))
            for r, p in zip(rows, payloads, strict=True)
        ],
        started_at=dt.datetime.fromisoformat(first["started_at"]),
        complete=bool(first["complete"]),
        complete_message=first["complete_message"],
        # Absent from a run staged by the release before rows_offered.
        offered={int(batch): rows for batch, rows in first.get("offered", {}).items()},
    )


def save_validated(engine: sa.Engine, run_id: str, validated: Validated) -> None:
    meta = {
        "started_at": validated.started_at.isoformat(),
        "requests": validated.requests,
        "complete": validated.complete,
        "complete_message": validated.complete_message,
    }
    _replace_stage(
        engine,
        run_id,
        STAGE_VALIDATED,
        [
            {
                "response_index": i,
                "group_number": validated.group_number,
                "batch_number": b.batch_number,
                "payload": orjson.dumps(
                    {
                        **meta,
                        "received": b.received,
                        "synthetic": b.synthetic,
                        "valid": b.valid,
                        "requests": b.requests,
                        "offered": b.offered,
                        "records": b.records,
                        "hashes": b.hashes,
                        "rejected": [
                            [r.response_index, r.row_index, r.raw, r.reason] for r in b.rejected
                        ],
                    }
                ).decode(),
            }
            for i, b in enumerate(validated.batches)
        ],
    )


def read_validated(engine: sa.Engine, run_id: str) -> Validated:
    rows = _read_stage(engine, run_id, STAGE_VALIDATED)
    payloads = [orjson.loads(r["payload"]) for r in rows]
    first = payloads[0]
    batches = [
        BatchRows(
            batch_number=int(r["batch_number"]),
            received=p["received"],
            synthetic=bool(p["synthetic"]),
            valid=p["valid"],
            # Absent from a run staged by the release before rows_offered.
            requests=p.get("requests", first["requests"]),
            offered=p.get("offered"),
            records=[_record(v) for v in p["records"]],
            hashes=p["hashes"],
            rejected=[Rejected(*item) for item in p["rejected"]],
        )
        for r, p in zip(rows, payloads, strict=True)
    ]
    return Validated(
        group_number=int(rows[0]["group_number"]),
        batches=batches,
        started_at=dt.datetime.fromisoformat(first["started_at"]),
        requests=first["requests"],
        complete=bool(first["complete"]),
        complete_message=first["complete_message"],
    )


def _record(values: list[Any]) -> schema.Record:
    # Written by save_validated from typed Records: the JSON round trip keeps ints and strs.
    return tuple(values)
