"""The window's stop rule against the real data API: most of a batch, a bound, and a stop on
nothing new; the rows-per-batch figure in ingestion_log; a log table from before the figure.

The API runs on the 75k real dev sample (7,500 rows a batch, 750 a response, as `make e2e`
serves it), with a window long enough that the batch cannot change under a test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from forest_mlops import database
from forest_mlops.ingestion import IngestionSettings, LoadResult, WindowRule, run_window
from forest_mlops.ingestion.fetch import Fetched, RetryPolicy, fetch_window, make_client
from tests.ingestion.conftest import count
from tests.ingestion.servers import DataApi, ScriptedApi, data_reply, start_data_api

FAST = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.2, timeout=10.0)
ROWS = [
    ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "4"],
    ["2590", "56", "2", "212", "-6", "390", "220", "235", "151", "6225", "Rawah", "C7745", "4"],
    ["2804", "139", "9", "268", "65", "3180", "234", "238", "135", "6121", "Neota", "C8776", "1"],
]


def api_on(dev_csv: Path, workdir: Path, sample_fraction: float) -> DataApi:
    return start_data_api(
        dev_csv, [], workdir, min_update_time=600, sample_fraction=sample_fraction, seed=3
    )


@pytest.fixture(scope="module")
def sampling_api(dev_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataApi]:
    """The course behaviour: each response a fresh random 10 % of the batch."""
    api = api_on(dev_csv, tmp_path_factory.mktemp("rule-api"), 0.1)
    yield api
    api.process.stop()


def data_requests(client: httpx.Client) -> list[str]:
    """Records the path of every GET /data the client makes."""
    made: list[str] = []
    client.event_hooks["request"].append(
        lambda request: made.append(request.url.path) if request.url.path == "/data" else None
    )
    return made


def platform_rule() -> WindowRule:
    """The rule the CLI, the DAG and the chart use when nothing is configured."""
    return IngestionSettings(api_url="http://unused", database_url="sqlite://").window_rule()


def log_rows(engine: sa.Engine, run_id: str) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        query = sa.text("SELECT * FROM ingestion_log WHERE ingestion_run_id = :r ORDER BY id")
        return list(conn.execute(query, {"r": run_id}).mappings().all())


def test_one_window_collects_most_of_a_batch_and_logs_the_figure(
    sampling_api: DataApi, mysql_engine: sa.Engine
) -> None:
    with make_client(sampling_api.url, FAST) as client:
        made = data_requests(client)
        result = run_window(
            mysql_engine, client, 1, rule=platform_rule(), policy=FAST, run_id="most"
        )
    assert isinstance(result, LoadResult)
    (batch,) = result.batches
    assert batch.offered == 7_500
    # One request brings 10 %; the rule keeps asking until a response is >= 90 % repeats.
    assert batch.inserted > 0.8 * batch.offered, batch
    assert 15 < batch.requests == len(made) < platform_rule().max_requests
    assert batch.received == 750 * batch.requests
    assert count(mysql_engine, "forest_cover_data") == batch.inserted

    (row,) = log_rows(mysql_engine, "most")
    assert (row["rows_offered"], row["rows_received"], row["rows_inserted"], row["requests"]) == (
        7_500,
        batch.received,
        batch.inserted,
        batch.requests,
    )
    assert row["rows_duplicate"] == batch.received - batch.inserted


def test_the_bound_ends_a_window_whose_responses_stay_new(
    dev_csv: Path, tmp_path: Path, mysql_engine: sa.Engine
) -> None:
    # 1 % samples: the 5th response is still ~96 % new, so only the bound can stop the window.
    api = api_on(dev_csv, tmp_path, 0.01)
    try:
        with make_client(api.url, FAST) as client:
            made = data_requests(client)
            result = run_window(
                mysql_engine, client, 1, rule=WindowRule(max_requests=5), policy=FAST, run_id="b"
            )
    finally:
        api.process.stop()
    assert isinstance(result, LoadResult)
    assert len(made) == 5
    (row,) = log_rows(mysql_engine, "b")
    assert (row["requests"], row["rows_received"], row["rows_offered"]) == (5, 5 * 75, 7_500)


def test_a_response_bringing_nothing_new_stops_the_window(
    dev_csv: Path, tmp_path: Path, mysql_engine: sa.Engine
) -> None:
    # Whole-batch responses: the second is all repeats, so there is no third.
    api = api_on(dev_csv, tmp_path, 1.0)
    try:
        with make_client(api.url, FAST) as client:
            made = data_requests(client)
            result = run_window(
                mysql_engine, client, 1, rule=platform_rule(), policy=FAST, run_id="dup"
            )
    finally:
        api.process.stop()
    assert isinstance(result, LoadResult)
    assert len(made) == 2
    (batch,) = result.batches
    assert (batch.offered, batch.inserted, batch.duplicate) == (7_500, 7_500, 7_500)


def test_new_rows_are_counted_per_window_not_per_response() -> None:
    # The same rows in another order are not new; a third reply would be, but is never asked.
    script = [
        data_reply(1, 2, ROWS[:2]),
        data_reply(1, 2, ROWS[1::-1]),
        data_reply(1, 2, ROWS[2:]),
    ]
    with ScriptedApi(script).running() as api, make_client(api.url, FAST) as client:
        fetched = fetch_window(client, 1, WindowRule(), FAST)
    assert isinstance(fetched, Fetched)
    assert fetched.new_rows == [2, 0]
    assert fetched.offered == {}  # the course API has no GET /batches: the figure is unknown
    assert api.requests == ["/data?group_number=1"] * 2


def test_an_install_from_before_rows_offered_keeps_collecting_and_upgrades(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The MySQL image runs mysql-init/ only on an empty volume: an existing ingestion_log
    has no rows_offered. The load still lands the data (without the figure, and says so);
    apply_schema adds the column."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE ingestion_log DROP COLUMN rows_offered")
    database._reflected.clear()
    script = [data_reply(1, 0, ROWS)]
    with (
        ScriptedApi(script).running() as api,
        make_client(api.url, FAST) as client,
        caplog.at_level(logging.WARNING, logger="forest_mlops.ingestion.load"),
    ):
        result = run_window(engine, client, 1, policy=FAST, run_id="old")
    assert isinstance(result, LoadResult) and result.inserted == len(ROWS)
    assert "ALTER TABLE ingestion_log ADD COLUMN rows_offered INT NULL" in caplog.text

    database.apply_schema(engine)
    assert "rows_offered" in {c["name"] for c in sa.inspect(engine).get_columns("ingestion_log")}
    (row,) = log_rows(engine, "old")
    assert row["rows_offered"] is None and row["rows_inserted"] == len(ROWS)
    database.apply_schema(engine)  # idempotent once upgraded
