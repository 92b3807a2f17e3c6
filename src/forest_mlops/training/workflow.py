"""The training run in four steps: prepare → train → evaluate → register and promote.

The training DAG runs each step as its own task (possibly its own pod); `forest-mlops train`
runs them one after the other in one process. Steps share nothing but what they return (small
JSON-friendly dicts: the parent run id and the data snapshot) and what they write to MySQL and
MLflow, so every step re-reads the rows it needs (`data.read_snapshot`) and finds models and
metrics in MLflow.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from forest_mlops import database, schema
from forest_mlops.serving.cost import ServingCost
from forest_mlops.training import data, evaluate, registry, search, split, tracking
from forest_mlops.training.pipelines import CandidateSpec
from forest_mlops.training.settings import TrainingSettings
from forest_mlops.training.threads import limited_threads

log = logging.getLogger(__name__)

# The logged model must reproduce the score computed at fit time on the same rows.
_REPRODUCE_TOLERANCE: Final = 1e-9


class TrainingError(RuntimeError):
    """A step found something wrong with its inputs (no candidates, a broken artifact)."""


@dataclass(frozen=True)
class RunContext:
    """What prepare hands to the later steps (through XCom in the DAG)."""

    parent_run_id: str
    experiment_id: str
    snapshot: data.Snapshot
    lineage: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "snapshot": self.snapshot.to_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunContext:
        return cls(
            parent_run_id=str(values["parent_run_id"]),
            experiment_id=str(values["experiment_id"]),
            snapshot=data.Snapshot.from_dict(values["snapshot"]),
            lineage=dict(values["lineage"]),
        )


def _split(settings: TrainingSettings, context: RunContext) -> split.SplitFrames:
    engine = database.create_engine(settings.database_url)
    try:
        frame, hashes = data.read_snapshot(engine, context.snapshot)
    finally:
        engine.dispose()
    return split.split_frame(frame, hashes)


def lineage_tags(
    snapshot: data.Snapshot,
    sizes: Mapping[str, int],
    *,
    trigger: str,
    dag_run_id: str | None,
    profile: str,
) -> dict[str, str]:
    tags = {
        tracking.TAG_ROWS: str(snapshot.rows),
        tracking.TAG_ROWS_TRAIN: str(sizes[split.TRAIN]),
        tracking.TAG_ROWS_VALIDATION: str(sizes[split.VALIDATION]),
        tracking.TAG_ROWS_TEST: str(sizes[split.TEST]),
        tracking.TAG_BATCHES: snapshot.batches,
        tracking.TAG_DATA_HASH: snapshot.data_hash,
        tracking.TAG_SNAPSHOT_MAX_ID: str(snapshot.max_id),
        tracking.TAG_SYNTHETIC: str(snapshot.synthetic).lower(),
        tracking.TAG_TRIGGER: trigger,
        tracking.TAG_PROFILE: profile,
    }
    if dag_run_id:
        tags[tracking.TAG_DAG_RUN_ID] = dag_run_id
    return tags


def prepare(
    settings: TrainingSettings, *, trigger: str, dag_run_id: str | None = None
) -> RunContext:
    """Record the data snapshot and open the parent MLflow run."""
    tracking.check_server(settings.tracking_uri)
    engine = database.create_engine(settings.database_url)
    try:
        snapshot, frame = data.take_snapshot(engine, synthetic=settings.data_synthetic)
    finally:
        engine.dispose()
    parts = split.split_frame(frame)
    # Refuse a table too small to compare models before anything is written to MLflow.
    search.check_split(parts)
    lineage = lineage_tags(
        snapshot, parts.sizes(), trigger=trigger, dag_run_id=dag_run_id, profile=settings.profile
    )
    client = tracking.client(settings.tracking_uri)
    experiment_id = tracking.ensure_experiment(client, settings.experiment_name)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    parent_run_id = tracking.start_parent_run(client, experiment_id, f"training-{stamp}", lineage)
    for key, value in {
        "profile": settings.profile,
        "promotion_margin": settings.promotion_margin,
        "candidates": len(search.profile(settings.profile)),
    }.items():
        client.log_param(parent_run_id, key, value)
    log.info(
        "prepared run %s: %d rows (%s), data hash %s",
        parent_run_id,
        snapshot.rows,
        parts.sizes(),
        snapshot.data_hash[:12],
    )
    return RunContext(parent_run_id, experiment_id, snapshot, lineage)


def train(
    settings: TrainingSettings,
    context: RunContext,
    candidates: Sequence[CandidateSpec] | None = None,
    *,
    keep_earlier: bool = False,
) -> list[dict[str, Any]]:
    """Fit the candidates (default: the profile's) and log each as a nested run with its model.

    A retried train step starts over: candidate runs of an earlier attempt are marked FAILED so
    that evaluate only sees this attempt's complete set. keep_earlier=True adds to them instead
    (bench/training.py trains reference models beside the profile's).
    """
    tracking.check_server(settings.tracking_uri)
    client = tracking.client(settings.tracking_uri)
    earlier = tracking.candidate_runs(client, context.experiment_id, context.parent_run_id)
    for stale in [] if keep_earlier else earlier:
        client.set_terminated(stale.info.run_id, status="FAILED")
    parts = _split(settings, context)
    input_example = parts.train.loc[:, list(schema.FEATURE_COLUMNS)].head(5)
    summaries: list[dict[str, Any]] = []

    def log_result(result: search.CandidateResult) -> None:
        run_id = tracking.log_candidate(
            context.experiment_id,
            context.parent_run_id,
            result,
            validation=parts.validation,
            input_example=input_example,
            tags=context.lineage,
        )
        summaries.append(
            {
                "run_id": run_id,
                "name": result.name,
                "fit_seconds": result.fit_seconds,
                **result.validation.as_metrics("validation"),
                **result.test.as_metrics("test"),
            }
        )

    search.run_search(
        parts,
        candidates if candidates is not None else search.profile(settings.profile),
        on_result=log_result,
        n_jobs=settings.n_jobs,
        keep_models=False,
    )
    return summaries


def evaluate_candidates(settings: TrainingSettings, context: RunContext) -> dict[str, Any]:
    """Choose the winner among the logged candidates and check its logged model on test rows.

    The winner is the highest validation macro-F1 (ties: validation accuracy) among the
    candidates within the serving budget. Its model is
    loaded back from MLflow, as serving will load it, and must reproduce the test score logged
    at fit time: a model that does not survive the round trip is never registered.
    """
    tracking.check_server(settings.tracking_uri)
    client = tracking.client(settings.tracking_uri)
    runs = tracking.candidate_runs(client, context.experiment_id, context.parent_run_id)
    if not runs:
        raise TrainingError(f"parent run {context.parent_run_id} has no finished candidate run")
    # The most accurate candidate among those that fit the serving budget; when none fits, the
    # most accurate of all (promotion then refuses it, saying what is over budget).
    budget = settings.budget()
    within = [
        r
        for r in runs
        if (cost := ServingCost.from_metrics(dict(r.data.metrics))) is not None
        and not budget.excess(cost)
    ]
    client.log_metric(context.parent_run_id, "candidates_within_budget", len(within))
    best = max(
        within or runs,
        key=lambda r: (
            r.data.metrics.get("validation_macro_f1", -1.0),
            r.data.metrics.get("validation_accuracy", -1.0),
        ),
    )
    model_uri = best.data.tags[tracking.TAG_MODEL_URI]
    parts = _split(settings, context)

    import mlflow

    with limited_threads(1):
        scores = evaluate.score(mlflow.pyfunc.load_model(model_uri), parts.test)
    logged = best.data.metrics["test_macro_f1"]
    if abs(scores.macro_f1 - logged) > _REPRODUCE_TOLERANCE:
        raise TrainingError(
            f"the logged model {model_uri} scores macro-F1 {scores.macro_f1:.6f} on the test "
            f"rows, not the {logged:.6f} logged at fit time"
        )
    client.set_tag(best.info.run_id, tracking.TAG_IS_WINNER, "true")
    client.set_tag(context.parent_run_id, tracking.TAG_WINNER_RUN, best.info.run_id)
    client.set_tag(context.parent_run_id, tracking.TAG_WINNER_NAME, best.info.run_name)
    winner_metrics = {
        f"winner_{key}": value
        for key, value in best.data.metrics.items()
        if key.startswith(("validation_", "test_"))
    }
    for key, value in winner_metrics.items():
        client.log_metric(context.parent_run_id, key, value)
    log.info(
        "winner %s: validation macro-F1 %.4f, test macro-F1 %.4f accuracy %.4f",
        best.info.run_name,
        best.data.metrics["validation_macro_f1"],
        scores.macro_f1,
        scores.accuracy,
    )
    return {
        "run_id": best.info.run_id,
        "name": best.info.run_name,
        "model_uri": model_uri,
        "test_macro_f1": scores.macro_f1,
        "test_accuracy": scores.accuracy,
    }


def register_and_promote(
    settings: TrainingSettings, context: RunContext, winner: Mapping[str, Any]
) -> registry.PromotionDecision:
    """Register the winner (alias challenger); promote it to champion if it earns it."""
    tracking.check_server(settings.tracking_uri)
    client = tracking.client(settings.tracking_uri)
    parts = _split(settings, context)
    version = registry.existing_version(client, settings.model_name, str(winner["run_id"]))
    if version is None:
        version = registry.register(
            client,
            settings.model_name,
            str(winner["model_uri"]),
            str(winner["run_id"]),
            tags={**context.lineage, tracking.TAG_WINNER_NAME: str(winner["name"])},
        )
    # Scored like the champion: loaded from the registry, on the same rows.
    with limited_threads(1):
        challenger = registry.score_version(settings.model_name, version, parts.test)
        decision = registry.decide(
            client,
            settings.model_name,
            version,
            challenger,
            parts.test,
            settings.promotion_margin,
            budget=settings.budget(),
            serving=registry.run_serving_cost(client, str(winner["run_id"])),
        )
    registry.apply(client, decision)
    for key, value in decision.tags().items():
        client.set_tag(context.parent_run_id, key, value)
    client.set_tag(context.parent_run_id, "registry.version", version)
    tracking.end_run(client, context.parent_run_id)
    return decision


def fail_run(settings: TrainingSettings, context: RunContext) -> None:
    """Mark the parent run FAILED (a step gave up); best effort, the step's error matters more."""
    try:
        tracking.check_server(settings.tracking_uri, attempts=1)
        tracking.end_run(tracking.client(settings.tracking_uri), context.parent_run_id, failed=True)
    except Exception:
        log.warning("could not mark run %s failed", context.parent_run_id, exc_info=True)


@dataclass(frozen=True)
class TrainingOutcome:
    context: RunContext
    candidates: list[dict[str, Any]]
    winner: dict[str, Any]
    decision: registry.PromotionDecision


def run_all(
    settings: TrainingSettings,
    *,
    trigger: str,
    dag_run_id: str | None = None,
    candidates: Sequence[CandidateSpec] | None = None,
) -> TrainingOutcome:
    """All four steps in this process (`forest-mlops train`, the retraining Job).

    `candidates` replaces the profile's search (tests use it to train a deliberately weak model).
    """
    context = prepare(settings, trigger=trigger, dag_run_id=dag_run_id)
    try:
        trained = train(settings, context, candidates)
        winner = evaluate_candidates(settings, context)
        decision = register_and_promote(settings, context, winner)
    except BaseException:
        fail_run(settings, context)
        raise
    return TrainingOutcome(context, trained, winner, decision)
