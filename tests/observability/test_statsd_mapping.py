"""The chart's Airflow StatsD mapping (charts/forest-mlops/files/prometheus/statsd-mapping.yaml) in
a real statsd_exporter (v0.29.0, built by scripts/build-statsd-exporter.sh into the machine's
cache), fed the names Airflow itself emits.

The names come from Airflow's own metrics code (airflow.observability.stats, the module the
scheduler and the task runner call), with a recording backend in place of the StatsD client:
so the legacy names (dag_id, task_id and state in the name) and the bare duplicates are the ones
Airflow 3.3 produces with its defaults, and the exporter turns them into the series the alert
rules read. Without the built exporter these tests fail under CI and skip elsewhere, listed at
the end of the run (tests/support/missing).
"""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import missing
from tests.support.helm import REPO_ROOT
from tests.support.processes import ServerProcess, free_port

VERSION = "v0.29.0"
EXPORTER = (
    Path(os.environ.get("FOREST_CACHE", "/var/cache/forest-mlops"))
    / f"statsd_exporter-{VERSION}"
    / "statsd_exporter"
)
MAPPING = REPO_ROOT / "charts" / "forest-mlops" / "files" / "prometheus" / "statsd-mapping.yaml"
PREFIX = "airflow"  # Airflow's default [metrics] statsd_prefix


class RecordingBackend:
    """What Airflow's SafeStatsdLogger sends, as StatsD lines (tags are not sent by default)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, **_: Any) -> None:
        self.lines.append(f"{PREFIX}.{stat}:{count}|c")

    def gauge(self, stat: str, value: float, rate: float = 1, **_: Any) -> None:
        self.lines.append(f"{PREFIX}.{stat}:{value}|g")

    def timing(self, stat: str, dt: datetime.timedelta | float, **_: Any) -> None:
        # The statsd client sends a timedelta as milliseconds, as it does a number.
        ms = dt.total_seconds() * 1000 if isinstance(dt, datetime.timedelta) else dt
        self.lines.append(f"{PREFIX}.{stat}:{ms:.6f}|ms")


@pytest.fixture
def task_lines() -> Iterator[RecordingBackend]:
    """The Task SDK's stats module (what DAG code imports: airflow.sdk.observability.stats, a
    copy of the core one of its own) writing to a RecordingBackend, as in a task's process."""
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats

    backend = RecordingBackend()
    stats.initialize(factory=lambda: backend, export_legacy_names=True)
    yield backend
    stats.initialize(factory=NoStatsLogger, export_legacy_names=True)


@pytest.fixture(scope="module")
def exporter_binary() -> Path:
    return missing.file(
        EXPORTER, hint="bash scripts/build-statsd-exporter.sh builds it; .ci/run does"
    )


@pytest.fixture
def airflow_lines() -> Iterator[RecordingBackend]:
    """Airflow's stats module writing to a RecordingBackend, legacy names on (its default)."""
    from airflow._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.observability import stats

    backend = RecordingBackend()
    stats.initialize(factory=lambda: backend, export_legacy_names=True)
    yield backend
    stats.initialize(factory=NoStatsLogger, export_legacy_names=True)


@pytest.fixture
def exporter(exporter_binary: Path, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A running exporter with the chart's mapping: (its StatsD UDP port, its /metrics URL)."""
    udp, web = free_port(), free_port()
    process = ServerProcess(
        [
            str(exporter_binary),
            f"--statsd.mapping-config={MAPPING}",
            f"--statsd.listen-udp=127.0.0.1:{udp}",
            "--statsd.listen-tcp=",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        log_path=tmp_path / "statsd_exporter.log",
    )
    try:
        process.wait_http(f"http://127.0.0.1:{web}/metrics", timeout=30)
        yield udp, f"http://127.0.0.1:{web}/metrics"
    finally:
        process.stop()


def send(port: int, lines: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in lines:
            sock.sendto(line.encode(), ("127.0.0.1", port))


def airflow_samples(url: str, expected: int, timeout: float = 10.0) -> dict[str, float]:
    """`name{labels}` -> value of the airflow_* samples, once `expected` events were handled."""
    deadline = time.monotonic() + timeout
    while True:
        families = list(text_string_to_metric_families(httpx.get(url, timeout=5).text))
        handled = sum(
            sample.value
            for family in families
            if family.name == "statsd_exporter_events_actions"
            for sample in family.samples
            if sample.name.endswith("_total")
        )
        if handled >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # UDP: the exporter handles the lines after send() returns
    return {
        sample.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items())) + "}":
        sample.value
        for family in families
        for sample in family.samples
        if sample.name.startswith("airflow")
    }  # fmt: skip


def test_the_mapping_passes_the_exporters_own_check(exporter_binary: Path) -> None:
    proc = subprocess.run(
        [str(exporter_binary), "--check-config", f"--statsd.mapping-config={MAPPING}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_airflows_names_become_the_series_the_rules_read(
    airflow_lines: RecordingBackend, exporter: tuple[int, str]
) -> None:
    from airflow.observability import stats

    # As DagRun._emit_duration_stats_for_finished_state and the task runner call them.
    training, extraction = "forest_cover_model_training", "forest_cover_data_extraction"
    run_tags = {"dag_id": training, "run_type": "asset_triggered"}
    stats.timing("dagrun.duration.failed", dt=datetime.timedelta(seconds=412), tags=run_tags)
    stats.timing("dagrun.duration.success", dt=datetime.timedelta(seconds=204), tags=run_tags)
    fetch = {"dag_id": extraction, "task_id": "fetch"}
    stats.incr("ti.start", tags=fetch)
    stats.incr("ti.finish", tags={**fetch, "state": "up_for_retry"})
    stats.incr("ti.finish", tags={**fetch, "state": "failed"})
    # A task inside a task group: its dots would split the legacy name, Airflow sends `__`.
    stats.incr("ti.finish", tags={"dag_id": extraction, "task_id": "grp.load", "state": "success"})
    stats.incr("ti_failures", tags=fetch)
    lines = airflow_lines.lines
    assert f"{PREFIX}.dagrun.duration.failed.{training}:412000.000000|ms" in lines
    assert f"{PREFIX}.ti.finish.{extraction}.fetch.up_for_retry:1|c" in lines
    assert f"{PREFIX}.ti.finish:1|c" in lines  # the bare duplicate the mapping drops

    udp, url = exporter
    send(udp, lines)
    samples = airflow_samples(url, expected=len(lines))

    run = f'dag_id="{training}"'
    assert samples[f'airflow_dagrun_duration_seconds_count{{{run},state="failed"}}'] == 1
    assert samples[f'airflow_dagrun_duration_seconds_sum{{{run},state="failed"}}'] == 412
    assert samples[f'airflow_dagrun_duration_seconds_sum{{{run},state="success"}}'] == 204
    # Seconds, not milliseconds: 412 s is over the 300 s bucket, 204 s within it.
    assert samples[f'airflow_dagrun_duration_seconds_bucket{{{run},le="300",state="failed"}}'] == 0
    assert samples[f'airflow_dagrun_duration_seconds_bucket{{{run},le="300",state="success"}}'] == 1
    task = f'dag_id="{extraction}"'
    assert samples[f'airflow_ti_finish_total{{{task},state="up_for_retry",task_id="fetch"}}'] == 1
    assert samples[f'airflow_ti_finish_total{{{task},state="failed",task_id="fetch"}}'] == 1
    assert samples[f'airflow_ti_finish_total{{{task},state="success",task_id="grp__load"}}'] == 1
    assert samples[f'airflow_ti_start_total{{{task},task_id="fetch"}}'] == 1
    assert samples["airflow_ti_failures_total{}"] == 1
    # The bare duplicates are dropped: no second count of the same events without labels.
    names = {key.split("{")[0] for key in samples}
    assert names.isdisjoint(
        {"airflow_dagrun_duration_failed_count", "airflow_ti_finish", "airflow_ti_start"}
    ), sorted(names)


def test_the_champion_batch_accuracy_becomes_a_labelled_gauge(
    task_lines: RecordingBackend, exporter: tuple[int, str]
) -> None:
    from airflow.sdk.observability import stats

    from forest_mlops.monitoring.batch_accuracy import BatchAccuracy

    # As the extraction DAG's champion_batch_accuracy task sends it (stats.gauge, no tags):
    # each batch's score and the scoring version's own test accuracy.
    for batch, accuracy in ((2, 0.8125), (3, 0.5)):
        item = BatchAccuracy(4, batch, "7", accuracy, accuracy - 0.1, 900, test_accuracy=0.875)
        for name, value in item.gauges():
            stats.gauge(name, value)
    lines = task_lines.lines
    # Not in Airflow's registry: sent once, under our name, no bare duplicate.
    assert lines == [
        f"{PREFIX}.forest.champion.batch_accuracy.4.2.7:0.8125|g",
        f"{PREFIX}.forest.champion.test_accuracy.4.2.7:0.875|g",
        f"{PREFIX}.forest.champion.batch_accuracy.4.3.7:0.5|g",
        f"{PREFIX}.forest.champion.test_accuracy.4.3.7:0.875|g",
    ]
    udp, url = exporter
    send(udp, lines)
    samples = forest_samples(url, expected=len(lines))
    assert samples == {
        'forest_champion_batch_accuracy{batch="2",group="4",model_version="7"}': 0.8125,
        'forest_champion_batch_accuracy{batch="3",group="4",model_version="7"}': 0.5,
        'forest_champion_test_accuracy{batch="2",group="4",model_version="7"}': 0.875,
        'forest_champion_test_accuracy{batch="3",group="4",model_version="7"}': 0.875,
    }


def test_the_rows_a_load_landed_become_gauges_per_batch_and_kind(
    task_lines: RecordingBackend, exporter: tuple[int, str]
) -> None:
    from airflow.sdk.observability import stats

    from forest_mlops.monitoring.ingestion import batch_row_gauges

    # As the extraction DAG's load task sends its LoadResult.summary().
    loaded = {
        "group_number": 4,
        "batches": [
            {"batch_number": 1, "received": 30, "inserted": 25, "duplicate": 3, "rejected": 2}
        ],
    }
    for name, value in batch_row_gauges(loaded):
        stats.gauge(name, value)
    udp, url = exporter
    send(udp, task_lines.lines)
    samples = forest_samples(url, expected=4)
    assert samples == {
        f'forest_ingestion_batch_rows{{batch="1",group="4",kind="{kind}"}}': value
        for kind, value in (("duplicate", 3), ("inserted", 25), ("received", 30), ("rejected", 2))
    }


def forest_samples(url: str, expected: int, timeout: float = 10.0) -> dict[str, float]:
    """`name{labels}` -> value of the forest_* samples, once `expected` events were handled."""
    deadline = time.monotonic() + timeout
    while True:
        families = list(text_string_to_metric_families(httpx.get(url, timeout=5).text))
        samples = {
            sample.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            + "}": sample.value
            for family in families
            for sample in family.samples
            if sample.name.startswith("forest")
        }  # fmt: skip
        if len(samples) >= expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)  # UDP: the exporter handles the lines after send() returns
