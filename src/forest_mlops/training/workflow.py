"""The training run in four steps: prepare → train → evaluate → register and promote.

The training DAG runs each step as its own task (possibly its own pod); `forest-mlops train`
runs them one after the other in one process. Steps share nothing but what they return (small
JSON-friendly dicts: the parent run id and the data snapshot) and what they write to MySQL and
MLflow, so every step re-reads the rows it needs (`data.read_snapshot`) and finds models and
metrics in MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from forest_mlops import database, schema
from forest_mlops.serving.cost import ServingCost
from forest_mlops.training import (
    candidates,
    data,
    evaluate,
    registry,
    search,
    split,
    tracking,
)
from forest_mlops.training.pipelines import CandidateSpec
from forest_mlops.training.settings import TrainingSettings
from forest_mlops.training.threads import limited_threads

log = logging.getLogger(__name__)

# The logged model must reproduce the score computed at fit time on the same rows.
_REPRODUCE_TOLERANCE: Final = 1e-9
# Where a candidate ran: tags of its run, and one JSON tag per candidate on the parent run.
TAG_POD: Final = "training.pod"
TAG_NODE: Final = "training.node"
PLACEMENT_TAG_PREFIX: Final = "placement."
TAG_NODES: Final = "training.nodes"
# The registered model is the winner refitted on train + validation (the tag names its run).
TAG_REFIT_OF: Final = "training.refit_of"
TAG_REFIT: Final = "training.refit"
TAG_REFIT_REJECTED: Final = "training.refit_rejected"


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


def placement() -> dict[str, str]:
    """Where this process runs: the pod and node names of a task pod (the chart's pod template
    sets them from the downward API), else the process id and the machine's name."""
    pod = os.environ.get("FOREST_POD_NAME") or f"process {os.getpid()}"
    node = os.environ.get("FOREST_NODE_NAME") or socket.gethostname()
    return {"pod": pod, "node": node}


def _placement_key(name: str) -> str:
    # MLflow tag keys allow letters, digits and _-./: and spaces, not the "=" of run names.
    return PLACEMENT_TAG_PREFIX + name.replace("=", ":")


def _record_placement(
    client: Any,
    context: RunContext,
    name: str,
    status: str,
    seconds: float,
    where: Mapping[str, str],
) -> None:
    value = json.dumps({"status": status, "seconds": round(seconds, 1), **where})
    client.set_tag(context.parent_run_id, _placement_key(name), value)


def train_candidate(
    settings: TrainingSettings,
    context: RunContext,
    spec: CandidateSpec,
    *,
    parts: split.SplitFrames | None = None,
    replace_earlier: bool = True,
) -> dict[str, Any]:
    """Fit one candidate and log it as a nested run with its model: one mapped task of the DAG,
    one step of the in-process search (`train`).

    A retried candidate starts over: a run of the same candidate from an earlier attempt is
    marked FAILED so that evaluate sees one run per candidate. Where it ran (pod, node) and how
    long it took are tags of its run and of the parent run (`placement.<name>`), also when it
    fails (then the error is re-raised: the task's retries and the other candidates go on).
    """
    tracking.check_server(settings.tracking_uri)
    client = tracking.client(settings.tracking_uri)
    where = placement()
    started = time.perf_counter()
    try:
        if replace_earlier:
            for stale in tracking.candidate_runs(
                client, context.experiment_id, context.parent_run_id
            ):
                if stale.info.run_name == spec.name:
                    client.set_terminated(stale.info.run_id, status="FAILED")
        if parts is None:
            parts = _split(settings, context)
        input_example = parts.train.loc[:, list(schema.FEATURE_COLUMNS)].head(5)
        search.check_split(parts)
        result = search.fit_candidate(spec, parts, n_jobs=settings.n_jobs)
        with limited_threads(1):
            run_id = tracking.log_candidate(
                context.experiment_id,
                context.parent_run_id,
                result,
                validation=parts.validation,
                input_example=input_example,
                tags={**context.lineage, TAG_POD: where["pod"], TAG_NODE: where["node"]},
            )
        seconds = time.perf_counter() - started
        client.log_metric(run_id, "candidate_seconds", seconds)
    except Exception as exc:
        seconds = time.perf_counter() - started
        log.exception("%s failed on %s after %.1f s", spec.name, where, seconds)
        try:
            _record_placement(client, context, spec.name, f"failed: {exc}"[:200], seconds, where)
        except Exception:
            log.warning("could not record the failure of %s", spec.name, exc_info=True)
        raise
    _record_placement(client, context, spec.name, "finished", seconds, where)
    return {
        "run_id": run_id,
        "name": result.name,
        "family": spec.family,
        "fit_seconds": result.fit_seconds,
        "seconds": seconds,
        **where,
        **result.validation.as_metrics("validation"),
        **result.test.as_metrics("test"),
    }


def train(
    settings: TrainingSettings,
    context: RunContext,
    candidates: Sequence[CandidateSpec] | None = None,
    *,
    keep_earlier: bool = False,
) -> list[dict[str, Any]]:
    """The whole search in this process, one candidate after another (`forest-mlops train`,
    the retraining Job, bench/training.py): the same `train_candidate` the DAG maps over.

    Candidates default to the profile's. A candidate that fails is logged and left out, as the
    DAG's mapped task is after its retries; the others still compete. When none is left the
    step fails. A retried train step starts over: candidate runs of an earlier attempt are
    marked FAILED so that evaluate only sees this attempt's complete set. keep_earlier=True adds
    to them instead (bench/training.py trains reference models beside the profile's).
    """
    tracking.check_server(settings.tracking_uri)
    client = tracking.client(settings.tracking_uri)
    earlier = tracking.candidate_runs(client, context.experiment_id, context.parent_run_id)
    for stale in [] if keep_earlier else earlier:
        client.set_terminated(stale.info.run_id, status="FAILED")
    specs = list(candidates if candidates is not None else search.profile(settings.profile))
    if not specs:
        raise ValueError("no candidates to train")
    parts = _split(settings, context)
    search.check_split(parts)
    summaries: list[dict[str, Any]] = []
    failures: list[str] = []
    for spec in specs:
        try:
            summaries.append(
                train_candidate(settings, context, spec, parts=parts, replace_earlier=False)
            )
        except (tracking.TrackingUnavailable, search.NotEnoughData):
            raise  # nothing else can succeed either
        except Exception as exc:
            failures.append(f"{spec.name}: {type(exc).__name__}: {exc}")
    if not summaries:
        raise TrainingError(f"every candidate failed: {'; '.join(failures)}")
    return summaries


def candidate_placements(client: Any, parent_run_id: str) -> dict[str, dict[str, Any]]:
    """Candidate name (as in its tag key) -> status, seconds, pod, node, from the parent run."""
    tags = client.get_run(parent_run_id).data.tags
    return {
        key.removeprefix(PLACEMENT_TAG_PREFIX): json.loads(value)
        for key, value in sorted(tags.items())
        if key.startswith(PLACEMENT_TAG_PREFIX)
    }


def evaluate_candidates(settings: TrainingSettings, context: RunContext) -> dict[str, Any]:
    """Choose the winner among the logged candidates, check its logged model on test rows, and
    (settings.refit) refit it on train + validation.

    The winner is the highest validation macro-F1 (ties: validation accuracy) among the
    candidates within the serving budget; whichever candidates failed are simply absent. Its
    model is loaded back from MLflow, as serving will load it, and must reproduce the test
    score logged at fit time: a model that does not survive the round trip is never registered.
    The refit (85 % of the rows instead of 70 %; the test part stays out, for the promotion
    gate) is what gets registered, unless its measured serving cost leaves the budget: then the
    winner as fitted on train is.
    """
    tracking.check_server(settings.tracking_uri)
    client = tracking.client(settings.tracking_uri)
    runs = [
        r
        for r in tracking.candidate_runs(client, context.experiment_id, context.parent_run_id)
        if TAG_REFIT_OF not in r.data.tags
    ]
    _summarise_placements(client, context)
    if not runs:
        raise TrainingError(f"parent run {context.parent_run_id} has no finished candidate run")
    # The most accurate candidate among those that fit the serving budget; when none fits, the
    # most accurate of all (promotion then refuses it, saying what is over budget).
    budget = settings.budget()
    within = [r for r in runs if _within_budget(r, budget)]
    client.log_metric(context.parent_run_id, "candidates_within_budget", len(within))
    client.log_metric(context.parent_run_id, "candidates_finished", len(runs))
    best = max(
        within or runs,
        key=lambda r: (
            r.data.metrics.get("validation_macro_f1", -1.0),
            r.data.metrics.get("validation_accuracy", -1.0),
        ),
    )
    parts = _split(settings, context)
    model_uri = best.data.tags[tracking.TAG_MODEL_URI]
    scores = _check_reproduces(model_uri, parts, best.data.metrics["test_macro_f1"])
    client.set_tag(best.info.run_id, tracking.TAG_IS_WINNER, "true")
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
    chosen = {
        "run_id": best.info.run_id,
        "name": best.info.run_name,
        "model_uri": model_uri,
        "test_macro_f1": scores.macro_f1,
        "test_accuracy": scores.accuracy,
        "refit": False,
        "candidate_run_id": best.info.run_id,
    }
    if settings.refit:
        refitted = _refit(settings, context, best, parts)
        if refitted is not None:
            chosen = refitted
    client.set_tag(context.parent_run_id, tracking.TAG_WINNER_RUN, chosen["run_id"])
    client.set_tag(context.parent_run_id, TAG_REFIT, str(chosen["refit"]).lower())
    return chosen


def _within_budget(run: Any, budget: Any) -> bool:
    cost = ServingCost.from_metrics(dict(run.data.metrics))
    return cost is not None and not budget.excess(cost)


def _check_reproduces(model_uri: str, parts: split.SplitFrames, logged: float) -> evaluate.Scores:
    import mlflow

    with limited_threads(1):
        scores = evaluate.score(mlflow.pyfunc.load_model(model_uri), parts.test)
    if abs(scores.macro_f1 - logged) > _REPRODUCE_TOLERANCE:
        raise TrainingError(
            f"the logged model {model_uri} scores macro-F1 {scores.macro_f1:.6f} on the test "
            f"rows, not the {logged:.6f} logged at fit time"
        )
    return scores


def _spec_of(run: Any) -> CandidateSpec:
    """The spec a candidate run was trained from: by its name, else from its params."""
    try:
        return candidates.by_name(run.info.run_name)
    except ValueError:
        params = dict(run.data.params)
        family, serving = params.pop("family"), params.pop("serving")
        return CandidateSpec(family, {k: _param_value(v) for k, v in params.items()}, serving)


def _param_value(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a string parameter, e.g. max_features="sqrt"


def _refit(
    settings: TrainingSettings, context: RunContext, best: Any, parts: split.SplitFrames
) -> dict[str, Any] | None:
    """The winner fitted again on train + validation, logged beside it; None when over budget.

    Its validation metrics are on rows it trained on (only its test metrics mean anything);
    the tag training.refit_of keeps it out of the candidates.
    """
    import pandas as pd

    spec = _spec_of(best)
    where = placement()
    started = time.perf_counter()
    result = search.fit_candidate(
        spec,
        parts,
        n_jobs=settings.n_jobs,
        fit_rows=pd.concat([parts.train, parts.validation]),
    )
    with limited_threads(1):
        run_id = tracking.log_candidate(
            context.experiment_id,
            context.parent_run_id,
            result,
            validation=parts.validation,
            input_example=parts.train.loc[:, list(schema.FEATURE_COLUMNS)].head(5),
            tags={
                **context.lineage,
                TAG_REFIT_OF: best.info.run_id,
                TAG_POD: where["pod"],
                TAG_NODE: where["node"],
            },
        )
    client = tracking.client(settings.tracking_uri)
    client.set_tag(run_id, tracking.TAG_ROLE, "refit")
    client.log_metric(run_id, "candidate_seconds", time.perf_counter() - started)
    refit_run = client.get_run(run_id)
    for key in ("test_accuracy", "test_macro_f1"):
        client.log_metric(context.parent_run_id, f"refit_{key}", refit_run.data.metrics[key])
    cost = ServingCost.from_metrics(dict(refit_run.data.metrics))
    excess = ["no serving cost measured"] if cost is None else settings.budget().excess(cost)
    if excess:
        log.warning(
            "the refit of %s is over budget (%s): registering the candidate", spec.name, excess
        )
        client.set_tag(context.parent_run_id, TAG_REFIT_REJECTED, "; ".join(excess))
        return None
    model_uri = refit_run.data.tags[tracking.TAG_MODEL_URI]
    scores = _check_reproduces(model_uri, parts, refit_run.data.metrics["test_macro_f1"])
    log.info(
        "refit %s on %d rows: test macro-F1 %.4f accuracy %.4f (on train alone: %.4f / %.4f)",
        spec.name,
        len(parts.train) + len(parts.validation),
        scores.macro_f1,
        scores.accuracy,
        best.data.metrics["test_macro_f1"],
        best.data.metrics["test_accuracy"],
    )
    return {
        "run_id": run_id,
        "name": best.info.run_name,
        "model_uri": model_uri,
        "test_macro_f1": scores.macro_f1,
        "test_accuracy": scores.accuracy,
        "refit": True,
        "candidate_run_id": best.info.run_id,
    }


def _summarise_placements(client: Any, context: RunContext) -> None:
    """placement.json on the parent run (every candidate: status, seconds, pod, node) and the
    nodes the candidates ran on as one tag."""
    placements = candidate_placements(client, context.parent_run_id)
    if not placements:
        return
    client.log_dict(context.parent_run_id, placements, "placement.json")
    nodes = sorted({str(p.get("node")) for p in placements.values()})
    client.set_tag(context.parent_run_id, TAG_NODES, ",".join(nodes)[:5000])


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
