"""The extraction DAG's champion_batch_accuracy step with a champion in the registry: a dag.test()
run against a real data API, MariaDB and MLflow server scores the version training promoted on
the batch it landed, sends the gauge through Airflow's stats module and finishes before publish
(which schedules the retraining). The run without a champion is in test_dag_integrity.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.ingestion.servers import start_data_api, write_dataset
from tests.training.conftest import TABLE_ROWS, fill_table
from tests.training.test_mlflow_training import GOOD, settings

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "forest_cover_data_extraction.py"


@pytest.mark.slow
def test_the_champion_is_scored_on_the_landed_batch_before_publish(
    airflow_home: Path,
    dev_csv: Path,
    make_train_database: Callable[[str], str],
    mlflow_tracking_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    task_gauges: list[tuple[str, float]],
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from forest_mlops import database, schema
    from forest_mlops.monitoring import batch_accuracy
    from forest_mlops.training import registry, tracking, workflow

    # A champion, trained and promoted by the training workflow on a table of its own.
    model_name = f"forest-dag-{uuid.uuid4().hex[:8]}"
    train_url = make_train_database("fmdagtrain")
    rows = pd.read_csv(dev_csv, nrows=TABLE_ROWS * 2).drop_duplicates(list(schema.COLUMNS))
    fill_table(train_url, rows.head(TABLE_ROWS))
    decision = workflow.run_all(
        settings(mlflow_tracking_server.url, train_url, model_name), trigger="test", candidates=GOOD
    ).decision
    assert decision.decision == registry.PROMOTED_FIRST

    served = write_dataset(dev_csv, tmp_path / "data.csv", 500)
    api = start_data_api(
        tmp_path / "data.csv", served, tmp_path, min_update_time=1.0, batches=1, sample_fraction=1.0
    )
    db_url = make_train_database("fmdagscore")
    for key, value in {
        "FOREST_API_URL": api.url,
        "FOREST_DATABASE_URL": db_url,
        "FOREST_GROUP_NUMBER": "4",
        "MLFLOW_TRACKING_URI": mlflow_tracking_server.url,
        "FOREST_MODEL_NAME": model_name,
    }.items():
        monkeypatch.setenv(key, value)
    gauges = task_gauges
    engine = database.create_engine(db_url)
    try:
        bag = DagBag(dag_folder=str(DAG_FILE))
        assert bag.import_errors == {}, bag.import_errors
        run = bag.dags["forest_cover_data_extraction"].test()
        tis = {ti.task_id: ti for ti in run.get_task_instances()}
        assert {k: str(ti.state) for k, ti in tis.items()} == dict.fromkeys(tis, "success")
        # Measured before publish ran, so before the training run it schedules.
        assert tis["champion_batch_accuracy"].end_date <= tis["publish"].start_date
        landed = database.read_training_frame(engine, group_number=4, batch_number=0)
    finally:
        engine.dispose()
        api.process.stop()

    # The expected value, apart from the module: the champion alias loaded by MLflow, scored on
    # the rows the run stored.
    tracking.client(mlflow_tracking_server.url)
    champion = mlflow.pyfunc.load_model(f"models:/{model_name}@{registry.CHAMPION}")
    predicted = np.asarray(champion.predict(landed[list(schema.FEATURE_COLUMNS)]))
    expected = float((predicted == landed[schema.TARGET_COLUMN].to_numpy()).mean())
    sent = [g for g in gauges if g[0].startswith(batch_accuracy.STAT_PREFIX)]
    assert sent == [
        (f"{batch_accuracy.STAT_PREFIX}.4.0.{decision.version}", pytest.approx(expected))
    ]
    # With it, the test accuracy of the version that scored, read here from its run.
    client = tracking.client(mlflow_tracking_server.url)
    run_id = client.get_model_version(model_name, decision.version).run_id
    held_to = client.get_run(run_id).data.metrics["test_accuracy"]
    assert [g for g in gauges if g[0].startswith(batch_accuracy.TEST_STAT_PREFIX)] == [
        (f"{batch_accuracy.TEST_STAT_PREFIX}.4.0.{decision.version}", held_to)
    ]
    assert len(landed) > 0
