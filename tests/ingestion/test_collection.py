"""Collecting from a real data API process (`forest-mlops api-data`) into MariaDB and SQLite.

The API runs with a short MIN_UPDATE_TIME so that a group's 10 batches pass in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa

from forest_mlops import cli, database, schema
from forest_mlops.ingestion import (
    CollectionComplete,
    FetchError,
    RetryPolicy,
    WindowRule,
    collect_until_complete,
    run_window,
)
from forest_mlops.ingestion.fetch import make_client
from tests.ingestion.conftest import count
from tests.ingestion.servers import DataApi, ScriptedApi, data_reply, start_data_api

WINDOW = 0.4  # the API's MIN_UPDATE_TIME in these tests
FAST = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.2, timeout=10.0)


@pytest.fixture(scope="module")
def sampling_api(
    small_dataset: tuple[Path, list[list[str]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DataApi]:
    """The course behaviour: each response a fresh random 10 % sample of the current batch."""
    path, rows = small_dataset
    api = start_data_api(path, rows, tmp_path_factory.mktemp("api"), min_update_time=WINDOW)
    yield api
    api.process.stop()


@pytest.fixture(scope="module")
def whole_batch_api(
    small_dataset: tuple[Path, list[list[str]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DataApi]:
    """Every response is the whole current batch, so the dataset itself is the expected result."""
    path, rows = small_dataset
    api = start_data_api(
        path, rows, tmp_path_factory.mktemp("api"), min_update_time=WINDOW, sample_fraction=1.0
    )
    yield api
    api.process.stop()


def stored(engine: sa.Engine) -> list[tuple[object, ...]]:
    frame = database.read_training_frame(engine)
    return list(frame[[*schema.COLUMNS, "batch_number"]].itertuples(index=False, name=None))


def log_rows(engine: sa.Engine) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT * FROM ingestion_log ORDER BY id")).mappings().all()
        )


def test_collecting_all_batches_lands_exactly_the_distinct_rows_served(
    sampling_api: DataApi, mysql_engine: sa.Engine
) -> None:
    served: list[tuple[int, list[object]]] = []

    def record(response: httpx.Response) -> None:
        if response.status_code == 200:
            response.read()
            body = orjson.loads(response.content)
            served.extend((body["batch_number"], row) for row in body["data"])

    group = 1
    with make_client(sampling_api.url, FAST, event_hooks={"response": [record]}) as client:
        collection = collect_until_complete(
            mysql_engine,
            client,
            group,
            interval=WINDOW + 0.05,
            rule=WindowRule.fixed(3),
            policy=FAST,
        )
        # The 400 after the last batch: a result, not an error; and it stays that way.
        assert isinstance(run_window(mysql_engine, client, group, policy=FAST), CollectionComplete)

    assert collection.complete
    # First batch each distinct row was served in, as the table records it.
    first_batch: dict[tuple[object, ...], int] = {}
    for batch, row in served:
        first_batch.setdefault(schema.parse_record(row), batch)
    rows = stored(mysql_engine)
    assert len(rows) == len(set(rows))
    assert {row[:13]: row[13] for row in rows} == first_batch
    assert len(served) > len(first_batch)  # 3 samples a window do repeat rows

    loaded = [r for r in log_rows(mysql_engine) if r["status"] == "loaded"]
    assert sorted({r["batch_number"] for r in loaded}) == list(range(10))
    assert sum(r["rows_received"] for r in loaded) == len(served)
    assert sum(r["rows_inserted"] for r in loaded) == len(first_batch)
    assert all(r["rows_rejected"] == 0 for r in loaded)
    statuses = [r["status"] for r in log_rows(mysql_engine)]
    assert statuses[-2:] == ["complete", "complete"]


def ingest_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`forest-mlops ingest ARGS`, run in this process (the same entry point, no start-up cost)."""
    capsys.readouterr()
    code = cli.main(["ingest", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_collects_every_row_of_the_dataset_into_sqlite_and_a_rerun_adds_nothing(
    whole_batch_api: DataApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = 2
    # The embedded local mode: the CLI applies the schema to an empty SQLite file itself.
    url = f"sqlite:///{tmp_path}/train.db"
    common = ["--api-url", whole_batch_api.url, "--database-url", url, "--group", str(group)]
    code, out, err = ingest_cli(
        capsys, *common, "--until-complete", "--interval", str(WINDOW + 0.05)
    )
    assert code == 0, err
    windows = [orjson.loads(line) for line in out.splitlines()]
    assert windows[-1] == {"group_number": group, "complete": True}
    batches = [w["batches"][0]["batch_number"] for w in windows[:-1]]
    # A window that starts a hair early sees its batch again (a harmless repeat), never skips.
    assert sorted(set(batches)) == list(range(10))
    assert batches == sorted(batches)

    engine = database.create_engine(url)
    try:
        expected = {schema.parse_record(row) for row in whole_batch_api.rows}
        rows = stored(engine)
        assert len(rows) == len(expected)
        assert {row[:13] for row in rows} == expected

        # Batch 0 again, all of it, twice: nothing new lands.
        whole_batch_api.restart_group(group)
        code, out, err = ingest_cli(capsys, *common, "--requests-per-window", "2")
        assert code == 0, err
        summary = orjson.loads(out)
        assert summary["inserted"] == 0
        assert summary["duplicate"] == summary["received"] == 2 * len(whole_batch_api.rows) // 10
        assert len(stored(engine)) == len(expected)
    finally:
        engine.dispose()


def test_api_down_mid_collection_retries_then_fails_clearly_writing_nothing(
    small_dataset: tuple[Path, list[list[str]]],
    mysql_engine: sa.Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, rows = small_dataset
    api = start_data_api(path, rows, tmp_path, min_update_time=WINDOW)
    try:
        with make_client(api.url, FAST) as client:
            collection = collect_until_complete(
                mysql_engine, client, 1, interval=WINDOW + 0.05, max_windows=2, policy=FAST
            )
            assert len(collection.results) == 2
            before = {t: count(mysql_engine, t) for t in ("forest_cover_data", "rejected_rows")}
            api.process.kill()
            started = time.monotonic()
            with pytest.raises(FetchError, match=r"failed after 3 tries: ConnectError"):
                run_window(mysql_engine, client, 1, policy=FAST, run_id="run-api-down")
            assert time.monotonic() - started >= 0.05 + 0.1  # it backed off between tries
    finally:
        api.process.stop()
    after = {t: count(mysql_engine, t) for t in ("forest_cover_data", "rejected_rows")}
    assert after == before
    assert count(mysql_engine, "ingestion_staging") == 0
    failed = [r for r in log_rows(mysql_engine) if r["ingestion_run_id"] == "run-api-down"]
    assert [(r["status"], r["rows_inserted"]) for r in failed] == [("failed", 0)]
    assert "ConnectError" in failed[0]["message"]

    # The CLI says the same and exits 1.
    url = mysql_engine.url.render_as_string(hide_password=False)
    code, _, err = ingest_cli(
        capsys, "--api-url", api.url, "--database-url", url, "--attempts", "2", "--backoff", "0"
    )
    assert code == 1
    assert "failed after 2 tries: ConnectError" in err
    assert count(mysql_engine, "forest_cover_data") == before["forest_cover_data"]


def test_without_an_interval_the_loop_follows_the_apis_announced_schedule(
    whole_batch_api: DataApi, tmp_path: Path
) -> None:
    engine = database.create_engine(f"sqlite:///{tmp_path}/paced.db")
    database.apply_schema(engine)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    group = 5  # a group no other test of this module uses
    try:
        with make_client(whole_batch_api.url, FAST) as client:
            collection = collect_until_complete(engine, client, group, policy=FAST, sleep=sleep)
    finally:
        engine.dispose()

    assert collection.complete
    # Each batch exactly once: never asked before the API moved on (that would load the same
    # batch again), and the API moves one batch per request, so none is skipped.
    batches = [b.batch_number for result in collection.results for b in result.batches]
    assert batches == list(range(10))
    # One wait after each batch (after the last one, the API's "all collected" comes when
    # its window ends). Each is the API's window measured on its clock, not the 300 s
    # fallback: the Date header has 1 s resolution and uvicorn refreshes it once a second.
    assert len(waits) == 10
    assert all(0.0 < wait <= WINDOW + 2.0 for wait in waits), waits


def test_an_api_without_a_schedule_gets_the_fallback_interval(tmp_path: Path) -> None:
    rows = [
        ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "4"]
    ]
    engine = database.create_engine(f"sqlite:///{tmp_path}/fallback.db")
    database.apply_schema(engine)
    waits: list[float] = []
    script = [
        data_reply(1, 0, rows),
        data_reply(1, 1, rows),  # GET /batches answers 404 (ScriptedApi's default)
    ]
    try:
        with ScriptedApi(script).running() as api, make_client(api.url, FAST) as client:
            collection = collect_until_complete(
                engine, client, 1, fallback_interval=42.0, max_windows=2, sleep=waits.append
            )
            assert api.batches_requests  # asked for the schedule, got 404
    finally:
        engine.dispose()
    assert len(collection.results) == 2
    assert len(waits) == 1 and 41.0 < waits[0] <= 42.0
