"""Integrity of every DAG file in dags/ (parametrised: a new DAG file is covered automatically),
and the extraction DAG run end to end with dag.test() against a real data API and MariaDB.

Airflow's metadata DB is SQLite in the session's throw-away AIRFLOW_HOME (tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.ingestion.servers import start_data_api, write_dataset


def wait_until_all_collected(api_url: str, group: int, timeout: float = 15.0) -> None:
    """Polls GET /batches until `group` is past its last batch's window (bounded)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        groups = httpx.get(f"{api_url}/batches", timeout=5).json()["groups"]
        (state,) = [g for g in groups if int(g["group_number"]) == group]
        if state["status"] == "all data collected":
            return
        assert time.monotonic() < deadline, f"group {group} still {state} after {timeout} s"
        time.sleep(0.05)


DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture
def no_io_while_parsing(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any socket connection or new SQLAlchemy DB connection fails (and is recorded)."""
    attempts: list[str] = []

    def refuse_socket(self: socket.socket, address: Any) -> None:
        attempts.append(f"socket connect to {address}")
        raise OSError(f"network access while parsing a DAG: {address}")

    def refuse_db(dbapi_connection: Any, record: Any) -> None:
        attempts.append("database connection")
        raise RuntimeError("database access while parsing a DAG")

    monkeypatch.setattr(socket.socket, "connect", refuse_socket)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_socket)
    sa.event.listen(sa.pool.Pool, "connect", refuse_db)
    try:
        yield attempts
    finally:
        sa.event.remove(sa.pool.Pool, "connect", refuse_db)


def parse(path: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path))


def test_there_are_dag_files() -> None:
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_without_errors_or_io(
    dag_file: Path, airflow_home: Path, no_io_while_parsing: list[str]
) -> None:
    bag = parse(dag_file)
    assert bag.import_errors == {}, bag.import_errors
    assert bag.dags, f"{dag_file.name} defines no DAG"
    assert no_io_while_parsing == []


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_policies(dag_file: Path, airflow_home: Path) -> None:
    bag = parse(dag_file)
    for dag_id, dag in bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert not dag.catchup, f"{dag_id} catches up"
        assert dag.start_date is None or dag.start_date.tzinfo is not None, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_extraction_schedule_comes_from_the_environment(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREST_INGEST_INTERVAL_SECONDS", "120")
    dag = parse(DAGS_DIR / "forest_cover_data_extraction.py").dags["forest_cover_data_extraction"]
    assert dag.schedule == dt.timedelta(seconds=120)


@pytest.mark.slow
def test_extraction_dag_end_to_end(
    airflow_home: Path,
    dev_csv: Path,
    make_train_database: Callable[[str], str],
    mlflow_tracking_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    task_gauges: list[tuple[str, float]],
) -> None:
    """Run 1 lands batch 0, measures no champion accuracy (the model has none yet) and updates
    the Asset; run 2 meets the 400 (skipped); run 3 stops at the short-circuit without calling
    the API. The load and champion steps send their gauges through Airflow's stats module."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from forest_mlops import database
    from forest_mlops.assets import FOREST_COVER_DATA

    rows = write_dataset(dev_csv, tmp_path / "data.csv", 500)
    api = start_data_api(
        tmp_path / "data.csv", rows, tmp_path, min_update_time=1.0, batches=1, sample_fraction=1.0
    )
    db_url = make_train_database("fmdag")
    monkeypatch.setenv("FOREST_API_URL", api.url)
    monkeypatch.setenv("FOREST_DATABASE_URL", db_url)
    monkeypatch.setenv("FOREST_GROUP_NUMBER", "4")
    monkeypatch.setenv("FOREST_FETCH_ATTEMPTS", "2")
    monkeypatch.setenv("FOREST_RETRY_BACKOFF_SECONDS", "0.1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_tracking_server.url)
    monkeypatch.setenv("FOREST_MODEL_NAME", f"forest-dag-{tmp_path.name[-12:]}")  # no champion
    gauges = task_gauges
    engine = database.create_engine(db_url)
    dag = parse(DAGS_DIR / "forest_cover_data_extraction.py").dags["forest_cover_data_extraction"]

    def states(run: Any) -> dict[str, str]:
        return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}

    def asset_events() -> list[dict[str, Any]]:
        with create_session() as session:
            events = session.scalars(sa.select(AssetEvent).order_by(AssetEvent.id)).all()
            return [e.extra for e in events if e.asset.uri == FOREST_COVER_DATA.uri]

    def log_statuses() -> list[str]:
        with engine.connect() as conn:
            return list(
                conn.execute(sa.text("SELECT status FROM ingestion_log ORDER BY id")).scalars()
            )

    try:
        first = dag.test()
        assert states(first) == dict.fromkeys(
            ["collection_pending", "fetch", "validate", "load", "champion_batch_accuracy",
             "publish"],
            "success",
        )  # fmt: skip
        expected = {database.schema.parse_record(r) for r in rows}
        # The load's rows per batch; no champion accuracy: there is no champion to score.
        assert ("forest.ingestion.batch_rows.4.0.inserted", float(len(expected))) in gauges
        assert [g for g in gauges if g[0].startswith("forest.champion")] == []
        assert len(database.read_training_frame(engine)) == len(expected)
        events = asset_events()
        assert len(events) == 1
        assert events[0]["inserted"] == len(expected)
        assert events[0]["batches"] == [0]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM ingestion_staging")).scalar() == 0

        # Batch 0's window runs from the first request (inside run 1), not from the test's start:
        # wait until the API itself says the group's data is all collected.
        wait_until_all_collected(api.url, group=4)
        second = dag.test()
        assert str(second.state) == "success"
        assert states(second) == {
            "collection_pending": "success",
            "fetch": "skipped",
            "validate": "skipped",
            "load": "skipped",
            "champion_batch_accuracy": "skipped",
            "publish": "skipped",
        }
        assert log_statuses() == ["loaded", "complete"]
        assert len(asset_events()) == 1

        third = dag.test()
        assert states(third)["fetch"] == "skipped"
        assert log_statuses() == ["loaded", "complete"]  # the API was not asked again
    finally:
        engine.dispose()
        api.process.stop()


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dags_are_unpaused_when_first_synced(dag_file: Path, airflow_home: Path) -> None:
    """A fresh deployment runs its DAGs without anyone unpausing them (issue 14, defect 2):
    Airflow's own path from a parsed file to the metadata DB (serialisation through
    LazyDeserializedDAG, then the DagModel rows the scheduler reads) leaves them unpaused, while
    Airflow's default ([core] dags_are_paused_at_creation = True) stays in force for other DAGs."""
    from airflow.configuration import conf
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    assert conf.getboolean("core", "dags_are_paused_at_creation"), "the test needs the default"
    bag = parse(dag_file)
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        for dag_id, dag in bag.dags.items():
            assert dag.is_paused_upon_creation is False, dag_id
            row = session.get(DagModel, dag_id)
            assert row is not None, dag_id
            assert row.is_paused is False, f"{dag_id} is paused after its first sync"
