"""What one extraction run landed, per batch, as StatsD gauges for the collection dashboard.

The rows live in MySQL and Airflow's own metrics know only task states, so the load task sends
`forest.ingestion.batch_rows.<group>.<batch>.<kind>` through Airflow's StatsD client (kinds:
received, inserted, duplicate, rejected; counts of this run). The chart's statsd mapping makes
them `forest_ingestion_batch_rows{group,batch,kind}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

STAT_PREFIX: Final = "forest.ingestion.batch_rows"
KINDS: Final = ("received", "inserted", "duplicate", "rejected")


def batch_row_gauges(loaded: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(stat name, value) per batch and kind of a load summary (LoadResult.summary)."""
    group = int(loaded["group_number"])
    return [
        (f"{STAT_PREFIX}.{group}.{int(batch['batch_number'])}.{kind}", float(batch[kind]))
        for batch in loaded["batches"]
        for kind in KINDS
    ]
