"""The champion's accuracy on collected batches (forest_mlops.monitoring.batch_accuracy) with a
real model: trained and promoted through the training workflow into a real MLflow server, the
batches in MariaDB as ingestion lands them, the gauges recorded as Airflow's stats.gauge gets them.
The extraction DAG's task around it runs in tests/dags/test_dag_integrity.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from forest_mlops import database, schema
from forest_mlops.monitoring import batch_accuracy
from forest_mlops.training import registry, tracking, workflow
from tests.training.test_mlflow_training import GOOD, settings

pytestmark = pytest.mark.slow


class Gauges:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []

    def __call__(self, stat: str, value: float) -> None:
        self.sent.append((stat, value))


def land(url: str, frame: pd.DataFrame, group: int, batch: int) -> None:
    engine = database.create_engine(url)
    try:
        rows = frame[list(schema.COLUMNS)].itertuples(index=False)
        database.insert_rows(engine, rows, batch_number=batch, group_number=group)
    finally:
        engine.dispose()


def test_no_champion_scores_nothing_and_says_why(
    mlflow_tracking_server: Any, training_table: str, model_name: str
) -> None:
    client = tracking.client(mlflow_tracking_server.url)
    engine = database.create_engine(training_table)
    gauges = Gauges()
    try:
        loaded = {"group_number": 1, "batches": [{"batch_number": 0}]}
        outcome = batch_accuracy.check_loaded_batches(engine, client, model_name, loaded, gauges)
    finally:
        engine.dispose()
    assert outcome.scored == []
    assert outcome.skipped == f"no champion of {model_name!r} yet"
    assert gauges.sent == []


def test_the_champion_is_scored_on_each_landed_batch_and_a_shifted_one_drops(
    mlflow_tracking_server: Any,
    training_table: str,
    model_name: str,
    labelled_rows: pd.DataFrame,
    make_train_database: Callable[[str], str],
) -> None:
    decision = workflow.run_all(
        settings(mlflow_tracking_server.url, training_table, model_name),
        trigger="test",
        candidates=GOOD,
    ).decision
    assert decision.decision == registry.PROMOTED_FIRST

    # A collection database of its own: group 2's batch 5 as it was served, batch 6 the same
    # rows with every label moved to the next class (data the champion no longer fits).
    url = make_train_database("fmbatchacc")
    fresh = labelled_rows.sample(600, random_state=7)
    shifted = fresh.assign(
        **{schema.TARGET_COLUMN: (fresh[schema.TARGET_COLUMN] + 1) % len(schema.COVER_TYPES)}
    )
    land(url, fresh, group=2, batch=5)
    land(url, shifted, group=2, batch=6)
    # Rows of another group with the same batch number must not be scored with group 2's.
    land(url, labelled_rows.drop(fresh.index).head(50), group=3, batch=5)

    client = tracking.client(mlflow_tracking_server.url)
    engine = database.create_engine(url)
    gauges = Gauges()
    loaded = {"group_number": 2, "batches": [{"batch_number": 5}, {"batch_number": 6}]}
    try:
        outcome = batch_accuracy.check_loaded_batches(engine, client, model_name, loaded, gauges)
    finally:
        engine.dispose()

    # The expected accuracy, computed apart: the champion alias loaded by MLflow itself.
    champion = mlflow.pyfunc.load_model(f"models:/{model_name}@{registry.CHAMPION}")

    def accuracy(frame: pd.DataFrame) -> float:
        predicted = np.asarray(champion.predict(frame[list(schema.FEATURE_COLUMNS)]))
        return float((predicted == frame[schema.TARGET_COLUMN].to_numpy()).mean())

    assert outcome.skipped is None
    by_batch = {item.batch_number: item for item in outcome.scored}
    assert sorted(by_batch) == [5, 6]
    assert {item.model_version for item in outcome.scored} == {decision.version}
    assert by_batch[5].rows == by_batch[6].rows == 600
    assert by_batch[5].accuracy == pytest.approx(accuracy(fresh))
    assert by_batch[6].accuracy == pytest.approx(accuracy(shifted))
    # The shifted batch is a decline the alert's 5-point margin sees.
    assert by_batch[6].accuracy < by_batch[5].accuracy - 0.05
    # And on the champion's run in MLflow, one step per batch.
    history = client.get_metric_history(
        client.get_model_version(model_name, decision.version).run_id,
        batch_accuracy.metric_key(2),
    )
    assert {m.step: m.value for m in history} == {5: by_batch[5].accuracy, 6: by_batch[6].accuracy}
    # Each score goes out with the test accuracy of the version that scored (its run's).
    held_to = client.get_run(
        client.get_model_version(model_name, decision.version).run_id
    ).data.metrics["test_accuracy"]
    assert by_batch[5].test_accuracy == by_batch[6].test_accuracy == held_to
    # What the alert compares: the shifted batch falls more than its 5 points under.
    assert by_batch[6].accuracy < held_to - 0.05 < by_batch[5].accuracy
    v = decision.version
    assert gauges.sent == [
        (f"forest.champion.batch_accuracy.2.5.{v}", by_batch[5].accuracy),
        (f"forest.champion.test_accuracy.2.5.{v}", held_to),
        (f"forest.champion.batch_accuracy.2.6.{v}", by_batch[6].accuracy),
        (f"forest.champion.test_accuracy.2.6.{v}", held_to),
    ]
