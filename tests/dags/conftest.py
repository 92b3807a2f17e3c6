"""Fixtures of the DAG tests that run the extraction DAG in process (dag.test())."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def task_gauges() -> Iterator[list[tuple[str, float]]]:
    """The (stat, value) pairs the DAG's tasks send as gauges. dag.test() runs the tasks in
    this process, so the Task SDK's stats module (what the tasks import) records them instead
    of sending; it is put back to sending nothing afterwards."""
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats as sdk_stats

    gauges: list[tuple[str, float]] = []

    class Recording(NoStatsLogger):
        @classmethod
        def gauge(cls, stat: str, value: float, *args: Any, **kwargs: Any) -> None:
            gauges.append((stat, value))

    sdk_stats.initialize(factory=Recording, export_legacy_names=True)
    yield gauges
    sdk_stats.initialize(factory=NoStatsLogger, export_legacy_names=True)
