"""validate + load against real databases (MariaDB and SQLite), fed over real HTTP.

The scripted server serves crafted payloads: a batch with good rows and every kind of malformed
row the issue names. The good rows must land, each bad row must be kept with its reason, and a
window that cannot be fetched completely must write no rows at all.
"""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from forest_mlops import database, schema
from forest_mlops.ingestion import (
    CollectionComplete,
    FetchError,
    IngestionSettings,
    RetryPolicy,
    run_window,
    staged_fetch,
    staged_load,
    staged_validate,
)
from forest_mlops.ingestion.fetch import WindowRule, make_client
from forest_mlops.ingestion.load import collection_complete, holds_synthetic_data
from tests.ingestion.conftest import count
from tests.ingestion.servers import Reply, ScriptedApi, complete_reply, data_reply

FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, timeout=2.0)

GOOD = [
    ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "4"],
    ["2590", "56", "2", "212", "-6", "390", "220", "235", "151", "6225", "Rawah", "C7745", "4"],
    ["3050", "120", "10", "30", "5", "1500", "230", "220", "120", "2000", "Comanche", "C2702", "1"],
    [2804, 139, 9, 268, 65, 3180, 234, 238, 135, 6121, "Neota", "C8776", 6],  # numbers, not strings
]
# Each malformed row with a pattern its rejection reason must match.
BAD = [
    (GOOD[0][:12], r"expected 13 values, got 12"),
    ([*GOOD[0], "extra"], r"expected 13 values, got 14"),
    (["2596", "abc", *GOOD[0][2:]], r"Aspect: not a number: 'abc'"),
    ([*GOOD[0][:11], "C9999", "4"], r"Soil_Type: unknown soil code 'C9999'"),
    (["99999", *GOOD[0][1:]], r"Elevation: 99999 is outside 0\.\.9000"),
    ([*GOOD[0][:6], "300", *GOOD[0][7:]], r"Hillshade_9am: 300 is outside 0\.\.255"),
    ([*GOOD[0][:12], "7"], r"Cover_Type: 7 is not a class id"),
    ([*GOOD[0][:10], "Mordor", *GOOD[0][11:]], r"Wilderness_Area: unknown area 'Mordor'"),
    (["2596.5", *GOOD[0][1:]], r"Elevation: expected an integer"),
    ({"Elevation": 2596}, r"expected a list of 13 values"),
    (None, r"expected a list of 13 values"),
]


def payload() -> list[object]:
    """Good and bad rows interleaved, plus a repeat of a good row (k requests do that)."""
    rows: list[object] = []
    for i, (bad, _) in enumerate(BAD):
        if i < len(GOOD):
            rows.append(GOOD[i])
        rows.append(bad)
    rows.append(GOOD[0])
    return rows


def stored_records(engine: sa.Engine) -> set[tuple[object, ...]]:
    frame = database.read_training_frame(engine)
    return set(frame[list(schema.COLUMNS)].itertuples(index=False, name=None))


def test_bad_rows_are_rejected_with_reasons_while_good_rows_land(engine: sa.Engine) -> None:
    api = ScriptedApi([data_reply(1, 4, payload())])
    with api.running(), make_client(api.url, FAST) as client:
        result = run_window(engine, client, 1, policy=FAST, run_id="run-malformed")
    assert not isinstance(result, CollectionComplete)
    assert (result.received, result.inserted, result.duplicate, result.rejected) == (
        len(payload()),
        len(GOOD),
        1,
        len(BAD),
    )
    assert stored_records(engine) == {schema.parse_record(r) for r in GOOD}

    with engine.connect() as conn:
        rejected = conn.execute(
            sa.text(
                "SELECT raw_row, reason, batch_number, ingestion_run_id FROM rejected_rows "
                "ORDER BY row_index"
            )
        ).all()
        log = conn.execute(sa.text("SELECT * FROM ingestion_log")).mappings().one()
        lineage = conn.execute(
            sa.text(
                "SELECT DISTINCT batch_number, group_number, ingestion_run_id "
                "FROM forest_cover_data"
            )
        ).all()
    assert len(rejected) == len(BAD)
    for (raw, reason, batch, run), (bad, pattern) in zip(rejected, BAD, strict=True):
        assert json.loads(raw) == bad  # kept exactly as received
        assert re.search(pattern, reason), (reason, pattern)
        assert (batch, run) == (4, "run-malformed")
    assert (log["status"], log["batch_number"], log["group_number"]) == ("loaded", 4, 1)
    assert (log["rows_received"], log["rows_inserted"]) == (len(payload()), len(GOOD))
    assert (log["rows_duplicate"], log["rows_rejected"]) == (1, len(BAD))
    assert lineage == [(4, 1, "run-malformed")]


def test_rows_from_a_synthetic_dataset_are_marked(engine: sa.Engine) -> None:
    script = [data_reply(1, 0, GOOD[:2]), data_reply(1, 1, GOOD[2:], synthetic=True)]
    with ScriptedApi(script).running() as api, make_client(api.url, FAST) as client:
        run_window(engine, client, 1, policy=FAST)
        assert not holds_synthetic_data(engine)
        run_window(engine, client, 1, policy=FAST)
    assert holds_synthetic_data(engine)


def test_running_the_same_batch_again_adds_nothing(engine: sa.Engine) -> None:
    script = [data_reply(2, 0, payload()), data_reply(2, 0, payload())]
    with ScriptedApi(script).running() as api, make_client(api.url, FAST) as client:
        first = run_window(engine, client, 2, policy=FAST)
        before = count(engine, "forest_cover_data")
        second = run_window(engine, client, 2, policy=FAST)
    assert not isinstance(first, CollectionComplete)
    assert not isinstance(second, CollectionComplete)
    assert first.inserted == len(GOOD)
    assert second.inserted == 0
    assert second.duplicate == len(GOOD) + 1
    assert count(engine, "forest_cover_data") == before == len(GOOD)


def test_a_window_that_fails_midway_writes_no_rows(engine: sa.Engine) -> None:
    # k = 3: the first response arrives, then the API breaks for good.
    script = [data_reply(1, 0, GOOD)]
    api = ScriptedApi(script, default=Reply(503))
    with (
        api.running(),
        make_client(api.url, FAST) as client,
        pytest.raises(FetchError, match="3 tries"),
    ):
        run_window(engine, client, 1, rule=WindowRule.fixed(3), policy=FAST, run_id="run-broken")
    for table in ("forest_cover_data", "rejected_rows", "ingestion_staging"):
        assert count(engine, table) == 0, table
    with engine.connect() as conn:
        status, message = conn.execute(
            sa.text(
                "SELECT status, message FROM ingestion_log WHERE ingestion_run_id = 'run-broken'"
            )
        ).one()
    assert status == "failed"
    assert "HTTP 503" in message


def test_all_data_collected_is_logged_once_per_attempt(engine: sa.Engine) -> None:
    assert not collection_complete(engine, 3)
    with ScriptedApi([complete_reply(3)]).running() as api, make_client(api.url, FAST) as client:
        outcome = run_window(engine, client, 3, policy=FAST)
    assert isinstance(outcome, CollectionComplete)
    assert collection_complete(engine, 3)
    assert not collection_complete(engine, 1)
    assert count(engine, "forest_cover_data") == 0


def test_staged_steps_hand_over_through_the_database(engine: sa.Engine) -> None:
    """The Airflow tasks' bodies: each step reads what the previous one staged."""
    with ScriptedApi([data_reply(1, 5, payload())]).running() as api:
        settings = IngestionSettings(
            api_url=api.url,
            database_url=engine.url.render_as_string(hide_password=False),
            fetch_attempts=2,
            retry_backoff_seconds=0.01,
            requests_per_window=1,
        )
        fetched = staged_fetch(engine, settings, "run-staged")
    assert not isinstance(fetched, CollectionComplete)
    assert fetched["rows_received"] == len(payload())
    assert count(engine, "ingestion_staging", "WHERE stage = 'fetched'") == 1

    validated = staged_validate(engine, "run-staged")
    assert staged_validate(engine, "run-staged") == validated  # a retried task replaces its stage
    assert validated["rows_rejected"] == len(BAD)
    assert count(engine, "ingestion_staging", "WHERE stage = 'validated'") == 1
    assert count(engine, "forest_cover_data") == 0  # nothing lands before the load

    loaded = staged_load(engine, "run-staged")
    assert (loaded["inserted"], loaded["rejected"]) == (len(GOOD), len(BAD))
    assert count(engine, "ingestion_staging") == 0  # removed in the load's transaction
    # A load retried after its commit reports that load and writes nothing twice.
    assert staged_load(engine, "run-staged") == loaded
    assert count(engine, "forest_cover_data") == len(GOOD)
    assert count(engine, "rejected_rows") == len(BAD)
