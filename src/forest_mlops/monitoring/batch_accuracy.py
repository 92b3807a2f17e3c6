"""The champion's accuracy on each batch the extraction DAG collects, before it retrains on it.

Every batch arrives labelled, so the rows a window lands are a fresh test set the current
champion has never trained on. Scored as soon as they land (the extraction DAG's
`champion_batch_accuracy` task, before `publish` schedules training), a falling accuracy shows
drift before the next model hides it. The value goes out as an Airflow StatsD gauge,
`forest.champion.batch_accuracy.<group>.<batch>.<version>`, which the chart's statsd mapping
turns into `forest_champion_batch_accuracy{group,batch,model_version}`
(charts/forest-mlops/files/prometheus/statsd-mapping.yaml), and as a metric on the champion's
MLflow run. Beside it goes the scoring version's own held-out test accuracy (its run's
`test_accuracy`), `forest.champion.test_accuracy.<group>.<batch>.<version>`, with the same
labels: alert ForestChampionBatchAccuracyDropped compares the two for the version that scored,
not with whatever version inference serves by the time the alert is evaluated (a promotion right
after the scoring would otherwise compare v1's batch score with v2's test accuracy).

No champion yet (the first batches, before training ever promoted a version): nothing is
scored, and the task says so. Any other failure (MLflow down, the champion cannot be loaded)
raises: the training run the batch would trigger needs the same registry and scores the same
champion (training.registry.decide), so it could not succeed either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import sqlalchemy as sa

from forest_mlops import database
from forest_mlops.training import evaluate, registry

log = logging.getLogger(__name__)

STAT_PREFIX: Final = "forest.champion.batch_accuracy"
TEST_STAT_PREFIX: Final = "forest.champion.test_accuracy"
# The metric training logs on a run for its held-out test split (training.workflow).
TEST_ACCURACY_METRIC: Final = "test_accuracy"

# (stat name, value): the shape of airflow.sdk.observability.stats.gauge's first arguments.
Emit = Callable[[str, float], None]


@dataclass(frozen=True)
class BatchAccuracy:
    """The champion's scores on the labelled rows one batch of one group brought."""

    group_number: int
    batch_number: int
    model_version: str
    accuracy: float
    macro_f1: float
    rows: int
    # The version's held-out test accuracy from its run (None: its run logged none).
    test_accuracy: float | None = None

    @property
    def stat_name(self) -> str:
        # Airflow sends no StatsD tags by default: the labels travel in the name, as in its own
        # legacy names, and the exporter's mapping makes them labels again.
        return f"{STAT_PREFIX}.{self._labels}"

    @property
    def _labels(self) -> str:
        return f"{self.group_number}.{self.batch_number}.{self.model_version}"

    def gauges(self) -> list[tuple[str, float]]:
        """(stat name, value) to send: the batch score, and the test score it is held to."""
        sent = [(self.stat_name, self.accuracy)]
        if self.test_accuracy is not None:
            sent.append((f"{TEST_STAT_PREFIX}.{self._labels}", self.test_accuracy))
        return sent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """What one check did: the batches scored, or why none was."""

    model_name: str
    scored: list[BatchAccuracy]
    skipped: str | None = None  # set when nothing was scored

    def summary(self) -> dict[str, Any]:
        """Small and JSON-able: the task's XCom."""
        return {
            "model_name": self.model_name,
            "scored": [s.to_dict() for s in self.scored],
            "skipped": self.skipped,
        }


def metric_key(group_number: int) -> str:
    """The MLflow metric on the champion's run: its accuracy per batch (the step) of a group."""
    return f"batch_accuracy_group_{group_number}"


def score_batches(
    engine: sa.Engine,
    mlflow_client: Any,
    model_name: str,
    group_number: int,
    batch_numbers: Iterable[int],
) -> Outcome:
    """Load the current champion once and score it on each batch's stored labelled rows; log
    each score on the champion's run (metric_key, step = batch number)."""
    champion = registry.current_champion(mlflow_client, model_name)
    if champion is None:
        return Outcome(model_name, [], skipped=f"no champion of {model_name!r} yet")
    version = str(champion.version)
    frames = {
        batch: database.read_training_frame(engine, group_number=group_number, batch_number=batch)
        for batch in sorted(set(batch_numbers))
    }
    frames = {batch: frame for batch, frame in frames.items() if len(frame)}
    if not frames:
        # Every row of the window was rejected or the batch list was empty.
        return Outcome(model_name, [], skipped="no stored rows for the batches of this run")
    import mlflow

    # The registered version, loaded as registry.score_version loads it for promotion: the
    # same model the promotion gate scores.
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    test_accuracy = None
    if champion.run_id:
        test_accuracy = mlflow_client.get_run(champion.run_id).data.metrics.get(
            TEST_ACCURACY_METRIC
        )
    scored = []
    for batch, frame in frames.items():
        scores = evaluate.score(model, frame)
        if champion.run_id:
            # On the champion's own run, one point per batch: MLflow draws the version's
            # accuracy on the data that came after it, next to its test scores.
            mlflow_client.log_metric(
                champion.run_id, metric_key(group_number), scores.accuracy, step=batch
            )
        scored.append(
            BatchAccuracy(
                group_number=group_number,
                batch_number=batch,
                model_version=version,
                accuracy=scores.accuracy,
                macro_f1=scores.macro_f1,
                rows=scores.rows,
                test_accuracy=test_accuracy,
            )
        )
    return Outcome(model_name, scored)


def check_loaded_batches(
    engine: sa.Engine, mlflow_client: Any, model_name: str, loaded: Mapping[str, Any], emit: Emit
) -> Outcome:
    """Score the batches a load step landed (its summary, LoadResult.summary) and emit gauges."""
    batches = [int(b["batch_number"]) for b in loaded["batches"]]
    outcome = score_batches(engine, mlflow_client, model_name, int(loaded["group_number"]), batches)
    if outcome.skipped:
        log.info("champion batch accuracy not measured: %s", outcome.skipped)
    for item in outcome.scored:
        log.info(
            "champion %s v%s on group %d batch %d: accuracy %.4f, macro-F1 %.4f (%d rows)",
            model_name, item.model_version, item.group_number, item.batch_number,
            item.accuracy, item.macro_f1, item.rows,
        )  # fmt: skip
        for stat, value in item.gauges():
            emit(stat, value)
    return outcome


def check_from_environment(loaded: Mapping[str, Any], emit: Emit) -> dict[str, Any]:
    """The extraction DAG's step: settings from the environment as training reads them
    (FOREST_DATABASE_URL, MLFLOW_TRACKING_URI, FOREST_MODEL_NAME); the outcome's summary."""
    from forest_mlops.training import tracking
    from forest_mlops.training.settings import TrainingSettings

    settings = TrainingSettings()
    # Fails fast with the URI in the message instead of MLflow's minutes of retries.
    tracking.check_server(settings.tracking_uri)
    client = tracking.client(settings.tracking_uri)
    engine = database.create_engine(settings.database_url)
    try:
        return check_loaded_batches(engine, client, settings.model_name, loaded, emit).summary()
    finally:
        engine.dispose()
