"""What the extraction DAG has collected so far, read from the training database.

The demo judges progress and completion from the tables the ingestion writes
(`forest_cover_data` and `ingestion_log`), not from the DAG's internals: the same facts a user
would query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from forest_mlops import database


@dataclass(frozen=True)
class BatchCount:
    batch: int
    requests: int
    received: int
    stored: int
    rejected: int


@dataclass(frozen=True)
class CollectionState:
    group: int
    batches: list[BatchCount] = field(default_factory=list)
    # The API answered "all data collected" for this group.
    complete: bool = False
    failed_attempts: int = 0
    # When the newest collection attempt started (naive UTC, as the ingestion writes it).
    last_attempt_at: dt.datetime | None = None

    @property
    def stored_rows(self) -> int:
        return sum(batch.stored for batch in self.batches)

    @property
    def received_rows(self) -> int:
        return sum(batch.received for batch in self.batches)

    def last_batch(self) -> int | None:
        return max((batch.batch for batch in self.batches), default=None)

    def has_all_batches(self, n_batches: int) -> bool:
        return self.complete or {b.batch for b in self.batches} >= set(range(n_batches))


def read_collection(engine: sa.Engine, group: int) -> CollectionState:
    tables = database.tables(engine)
    data, ingestion = tables.data, tables.log
    stored_query = (
        sa.select(data.c.batch_number, sa.func.count())
        .where(data.c.group_number == group)
        .group_by(data.c.batch_number)
    )
    log_query = (
        sa.select(
            ingestion.c.batch_number,
            sa.func.sum(ingestion.c.requests),
            sa.func.sum(ingestion.c.rows_received),
            sa.func.sum(ingestion.c.rows_rejected),
        )
        .where(ingestion.c.group_number == group, ingestion.c.status == "loaded")
        .group_by(ingestion.c.batch_number)
    )
    status_query = (
        sa.select(ingestion.c.status, sa.func.count())
        .where(ingestion.c.group_number == group, ingestion.c.status != "loaded")
        .group_by(ingestion.c.status)
    )
    last_query = sa.select(sa.func.max(ingestion.c.started_at)).where(
        ingestion.c.group_number == group
    )
    with engine.connect() as conn:
        stored = {int(b): int(n) for b, n in conn.execute(stored_query)}
        logged = {
            int(b): (int(req or 0), int(rec or 0), int(rej or 0))
            for b, req, rec, rej in conn.execute(log_query)
            if b is not None
        }
        statuses = {str(s): int(n) for s, n in conn.execute(status_query)}
        last_attempt_at = conn.execute(last_query).scalar()
    batches = [
        BatchCount(
            batch=batch,
            requests=logged.get(batch, (0, 0, 0))[0],
            received=logged.get(batch, (0, 0, 0))[1],
            stored=stored.get(batch, 0),
            rejected=logged.get(batch, (0, 0, 0))[2],
        )
        for batch in sorted(set(stored) | set(logged))
    ]
    return CollectionState(
        group=group,
        batches=batches,
        complete=statuses.get("complete", 0) > 0,
        failed_attempts=statuses.get("failed", 0),
        last_attempt_at=last_attempt_at,
    )
