"""Validate fetched rows against forest_mlops.schema: every row is either valid or rejected.

A bad row never fails the good rows next to it and is never dropped: it is kept, as received,
with the reason schema.parse_record gave.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from forest_mlops import schema
from forest_mlops.database import row_hash
from forest_mlops.ingestion.fetch import Fetched


@dataclass(frozen=True)
class Rejected:
    response_index: int
    row_index: int
    raw: Any
    reason: str


@dataclass
class BatchRows:
    """The valid rows of one batch (distinct, in first-seen order) and its rejected rows."""

    batch_number: int
    received: int = 0
    synthetic: bool = False
    valid: int = 0  # valid rows received, repeats included
    requests: int = 0  # responses that served this batch
    offered: int | None = None  # rows the batch has (the API's layout), when it says
    records: list[schema.Record] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class Validated:
    group_number: int
    batches: list[BatchRows]
    started_at: dt.datetime
    requests: int
    complete: bool = False
    complete_message: str | None = None

    @property
    def rows_received(self) -> int:
        return sum(b.received for b in self.batches)

    @property
    def rows_valid(self) -> int:
        return sum(b.valid for b in self.batches)

    @property
    def rows_rejected(self) -> int:
        return sum(len(b.rejected) for b in self.batches)


def parse_row(raw: Any) -> schema.Record:
    """parse_record for a row as the API sent it (which may not even be a list)."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise schema.RecordError(f"expected a list of {len(schema.COLUMNS)} values, got {raw!r}")
    return schema.parse_record(raw)


def validate(fetched: Fetched) -> Validated:
    batches: dict[int, BatchRows] = {}
    seen: dict[int, set[schema.Record]] = {}
    for response_index, response in enumerate(fetched.responses):
        batch = batches.setdefault(response.batch_number, BatchRows(response.batch_number))
        distinct = seen.setdefault(response.batch_number, set())
        batch.received += len(response.rows)
        batch.requests += 1
        batch.synthetic = batch.synthetic or response.synthetic
        for row_index, raw in enumerate(response.rows):
            try:
                record = parse_row(raw)
            except schema.RecordError as exc:
                batch.rejected.append(Rejected(response_index, row_index, raw, str(exc)))
                continue
            batch.valid += 1
            # Repeats inside the window (k requests sample the same batch) are dropped here
            # and counted as duplicates by the load, as rows already stored are.
            if record not in distinct:
                distinct.add(record)
                batch.records.append(record)
    for batch in batches.values():
        batch.hashes = [row_hash(r) for r in batch.records]
        batch.offered = fetched.offered.get(batch.batch_number)
    return Validated(
        group_number=fetched.group_number,
        batches=sorted(batches.values(), key=lambda b: b.batch_number),
        started_at=fetched.started_at,
        requests=len(fetched.responses),
        complete=fetched.complete,
        complete_message=fetched.complete_message,
    )
