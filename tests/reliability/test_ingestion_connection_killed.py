"""The MariaDB connection of a running load killed from another session (`KILL <id>`).

The fetch faults (5xx, timeouts, truncated and invalid JSON, an unreachable API: retries with
backoff, then a clear FetchError) are covered over real HTTP by tests/ingestion/test_fetch.py
and test_load.py::test_a_window_that_fails_midway_writes_no_rows; not repeated here.

Here the load is caught half-way: its data rows are already inserted inside its transaction
when its INSERT into ingestion_log waits for a lock another transaction holds. The load's
connection is then killed by the server. Nothing of the window may stay, and running the same
window again must land the batch exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from forest_mlops import database, schema
from forest_mlops.ingestion import RetryPolicy, run_window
from forest_mlops.ingestion.fetch import make_client
from forest_mlops.ingestion.load import LoadResult
from tests.ingestion.servers import ScriptedApi, data_reply, write_dataset

BATCH_ROWS = 2000
FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05, timeout=10.0)


@pytest.fixture
def train_url(make_train_database: Callable[[str], str]) -> str:
    return make_train_database("fmrelkill")


@pytest.fixture(scope="module")
def batch(dev_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    rows = write_dataset(dev_csv, tmp_path_factory.mktemp("kill") / "rows.csv", BATCH_ROWS)
    distinct = {schema.parse_record(r): r for r in rows}
    return list(distinct.values())


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())


def uncommitted_rows(engine: sa.Engine, run_id: str) -> int:
    """Rows of the run visible to a READ UNCOMMITTED reader: what the open transaction wrote."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        return int(
            conn.execute(
                sa.text("SELECT COUNT(*) FROM forest_cover_data WHERE ingestion_run_id = :r"),
                {"r": run_id},
            ).scalar_one()
        )


def blocked_load_connection(engine: sa.Engine, database_name: str) -> int | None:
    """The id of the connection whose INSERT INTO ingestion_log waits for a lock."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT t.trx_mysql_thread_id FROM information_schema.innodb_trx t "
                "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
                "WHERE p.db = :db AND t.trx_state = 'LOCK WAIT' "
                "AND t.trx_query LIKE 'INSERT INTO ingestion_log%'"
            ),
            {"db": database_name},
        ).first()
    return None if found is None else int(found[0])


@pytest.fixture
def lock_holder(train_url: str) -> Iterator[sa.Connection]:
    """A transaction holding next-key locks on all of ingestion_log (the supremum included),
    so any INSERT into it waits."""
    engine = database.create_engine(train_url)
    conn = engine.connect()
    conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    conn.commit()
    transaction = conn.begin()
    conn.exec_driver_sql("SELECT * FROM ingestion_log FOR UPDATE")
    yield conn
    if transaction.is_active:
        transaction.rollback()
    conn.close()
    engine.dispose()


def test_killed_connection_mid_load_rolls_back_and_the_rerun_lands_the_batch_once(
    train_url: str, batch: list[list[str]], lock_holder: sa.Connection
) -> None:
    engine = database.create_engine(train_url)
    watcher = database.create_engine(train_url)
    database_name = engine.url.database
    assert database_name
    outcome: dict[str, object] = {}

    api = ScriptedApi([data_reply(1, 6, batch), data_reply(1, 6, batch), data_reply(1, 6, batch)])
    with api.running(), make_client(api.url, FAST) as client:

        def load_window() -> None:
            try:
                outcome["result"] = run_window(engine, client, 1, policy=FAST, run_id="killed")
            except Exception as exc:
                outcome["error"] = exc

        loader = threading.Thread(target=load_window)
        loader.start()
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline:
            time.sleep(0.1)
            victim = blocked_load_connection(watcher, database_name)
        assert victim is not None, f"the load never blocked on ingestion_log: {outcome}"
        # Half-way: the batch's rows are written inside the transaction, not committed.
        assert uncommitted_rows(watcher, "killed") == len(batch)

        with watcher.connect() as conn:
            conn.exec_driver_sql(f"KILL {victim}")
        loader.join(60)
        assert not loader.is_alive()
        lock_holder.rollback()

        error = outcome.get("error")
        assert isinstance(error, sa.exc.OperationalError), outcome
        assert "Lost connection" in str(error) or "server has gone away" in str(error).lower()

        # The whole window rolled back: no data row, no rejected row, no log row of the run.
        for table in ("forest_cover_data", "rejected_rows", "ingestion_log"):
            assert count(engine, table) == 0, table
        assert uncommitted_rows(watcher, "killed") == 0

        # The same window again (a retried task): the batch lands once, completely.
        rerun = run_window(engine, client, 1, policy=FAST, run_id="rerun")
        assert isinstance(rerun, LoadResult)
        assert (rerun.received, rerun.inserted, rerun.duplicate) == (len(batch), len(batch), 0)
        # And once more: nothing twice.
        again = run_window(engine, client, 1, policy=FAST, run_id="rerun-again")
        assert isinstance(again, LoadResult)
        assert (again.inserted, again.duplicate) == (0, len(batch))

    stored = database.read_training_frame(engine)
    assert len(stored) == len(batch)
    assert set(stored[list(schema.COLUMNS)].itertuples(index=False, name=None)) == {
        schema.parse_record(row) for row in batch
    }
    assert set(stored["batch_number"]) == {6}
    with engine.connect() as conn:
        log = conn.execute(
            sa.text("SELECT ingestion_run_id, status, rows_inserted FROM ingestion_log ORDER BY id")
        ).all()
    assert [tuple(row) for row in log] == [
        ("rerun", "loaded", len(batch)),
        ("rerun-again", "loaded", 0),
    ]
    engine.dispose()
    watcher.dispose()
