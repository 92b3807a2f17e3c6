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
    collect_until_complete,
    run_window,
)
from forest_mlops.ingestion.fetch import make_client
from tests.ingestion.conftest import count
from tests.ingestion.servers import DataApi, start_data_api

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
            mysql_engine, client, group, interval=WINDOW + 0.05, requests=3, policy=FAST
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
