"""The model registry: register the winner as challenger, promote it to champion on merit.

Policy (docs/MLFLOW.md):
- every training run registers its winner as a new version of FOREST_MODEL_NAME and points
  the alias `challenger` at it;
- the alias `champion` moves to the new version only when there is no champion yet, or when
  the new version's macro-F1 on the CURRENT test rows beats the champion's macro-F1 on the
  SAME rows (the champion is loaded from the registry and scored again) by more than
  FOREST_PROMOTION_MARGIN. Scores from the champion's own training run are not used: they
  came from other, fewer rows;
- before any accuracy is compared, the new version must fit the serving budget
  (forest_mlops.serving.cost: artifact size, load time, latency of 1,000 records, measured
  when its candidate was logged); a version over budget is never promoted, and a champion over
  budget gives way to a new version within it whatever their scores;
- the decision, its reason, its numbers, the budget and the measured serving cost are tags on
  the new version (`promotion.*`).

Aliases only; the deprecated stages are never used. Any failure (registry down, the champion
cannot be loaded or scored) raises before `champion` is touched, so it never moves by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import pandas as pd

from forest_mlops.serving.cost import Budget, ServingCost
from forest_mlops.training import evaluate

log = logging.getLogger(__name__)

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"

PROMOTED_FIRST: Final = "promoted_first"  # there was no champion
PROMOTED: Final = "promoted"  # beat the champion by more than the margin
KEPT: Final = "kept_champion"  # did not
OVER_BUDGET: Final = "over_budget"  # costs more to serve than the budget allows


@dataclass(frozen=True)
class PromotionDecision:
    model_name: str
    version: str
    decision: str
    challenger_macro_f1: float
    challenger_accuracy: float
    champion_version: str | None
    champion_macro_f1: float | None
    champion_accuracy: float | None
    margin: float
    test_rows: int
    reason: str = ""
    budget: Budget = field(default_factory=Budget)
    serving: ServingCost | None = None

    @property
    def promoted(self) -> bool:
        return self.decision in (PROMOTED_FIRST, PROMOTED)

    def summary(self) -> str:
        head = f"{self.model_name} v{self.version}: {self.decision}"
        if self.decision == OVER_BUDGET or self.reason.startswith("champion"):
            return f"{head} ({self.reason})"
        if self.champion_version is None:
            return f"{head} (no champion; macro-F1 {self.challenger_macro_f1:.4f})"
        return (
            f"{head} (macro-F1 {self.challenger_macro_f1:.4f} vs champion "
            f"v{self.champion_version} {self.champion_macro_f1:.4f} on the same "
            f"{self.test_rows} test rows, margin {self.margin:g})"
        )

    def tags(self) -> dict[str, str]:
        serving = {} if self.serving is None else self.serving.as_metrics()
        return {f"promotion.{key}": "" if value is None else str(value) for key, value in [
            ("decision", self.decision),
            ("reason", self.reason),
            *self.budget.tags().items(),
            *serving.items(),
            ("challenger_test_macro_f1", self.challenger_macro_f1),
            ("challenger_test_accuracy", self.challenger_accuracy),
            ("champion_version", self.champion_version),
            ("champion_test_macro_f1", self.champion_macro_f1),
            ("champion_test_accuracy", self.champion_accuracy),
            ("margin", self.margin),
            ("test_rows", self.test_rows),
        ]}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promoted": self.promoted}


def run_serving_cost(mlflow_client: Any, run_id: str | None) -> ServingCost | None:
    """The serving cost logged on a candidate run, or None (none logged, no run)."""
    if not run_id:
        return None
    return ServingCost.from_metrics(dict(mlflow_client.get_run(run_id).data.metrics))


def current_champion(mlflow_client: Any, model_name: str) -> Any | None:
    """The version the alias `champion` points at, or None (no model or no alias yet)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    not_found = ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)
    try:
        return mlflow_client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code == not_found:
            return None
        # The server answers "invalid parameter" for an alias that is not set.
        if "alias" in str(exc).lower() and "not found" in str(exc).lower():
            return None
        if exc.error_code != "PERMISSION_DENIED":
            raise
        # MLflow's basic-auth app answers the alias lookup of a model that is not registered
        # yet with 403, not 404 (the extraction DAG's champion_batch_accuracy failed on it on a
        # fresh install, make e2e); the model itself answers 404 then. A real refusal stays one.
        try:
            mlflow_client.get_registered_model(model_name)
        except MlflowException as missing:
            if missing.error_code == not_found:
                return None
            raise exc from missing
        raise


def register(
    mlflow_client: Any, model_name: str, model_uri: str, run_id: str, tags: Mapping[str, str]
) -> str:
    """A new version of `model_name` from a logged model, with alias challenger; its number."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    try:
        mlflow_client.create_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    version = mlflow_client.create_model_version(
        model_name, source=model_uri, run_id=run_id, tags=dict(tags), model_id=_model_id(model_uri)
    )
    mlflow_client.set_registered_model_alias(model_name, CHALLENGER, version.version)
    log.info("registered %s version %s (alias %s)", model_name, version.version, CHALLENGER)
    return str(version.version)


def _model_id(model_uri: str) -> str | None:
    # MLflow 3 logs models as LoggedModels addressed as models:/m-<id>.
    prefix = "models:/m-"
    return model_uri.removeprefix("models:/") if model_uri.startswith(prefix) else None


def decide(
    mlflow_client: Any,
    model_name: str,
    version: str,
    challenger: evaluate.Scores,
    test_rows: pd.DataFrame,
    margin: float,
    *,
    budget: Budget,
    serving: ServingCost | None,
) -> PromotionDecision:
    """Check the budget, then compare the new version with the champion; moves no alias."""
    champion = current_champion(mlflow_client, model_name)
    excess = ["no serving cost was measured"] if serving is None else budget.excess(serving)
    champion_scores = None
    if excess:
        # Over budget: the champion is not even scored, accuracy cannot buy a way in.
        decision, reason = OVER_BUDGET, "over budget: " + "; ".join(excess)
    else:
        champion_scores = (
            None
            if champion is None
            else score_version(model_name, str(champion.version), test_rows)
        )
        champion_excess = (
            [] if champion is None else _champion_excess(mlflow_client, champion, budget)
        )
        if champion_scores is None:
            decision, reason = PROMOTED_FIRST, "within budget; no champion"
        elif champion is not None and champion_excess:
            decision = PROMOTED
            reason = f"within budget; champion v{champion.version} is over budget: " + "; ".join(
                champion_excess
            )
        elif challenger.macro_f1 > champion_scores.macro_f1 + margin:
            decision, reason = PROMOTED, "within budget; higher macro-F1 than the champion"
        else:
            decision, reason = KEPT, "within budget; macro-F1 not above the champion's + margin"
    return PromotionDecision(
        model_name=model_name,
        version=version,
        decision=decision,
        challenger_macro_f1=challenger.macro_f1,
        challenger_accuracy=challenger.accuracy,
        champion_version=None if champion is None else str(champion.version),
        champion_macro_f1=None if champion_scores is None else champion_scores.macro_f1,
        champion_accuracy=None if champion_scores is None else champion_scores.accuracy,
        margin=margin,
        test_rows=len(test_rows),
        reason=reason,
        budget=budget,
        serving=serving,
    )


def _champion_excess(mlflow_client: Any, champion: Any, budget: Budget) -> list[str]:
    # A champion trained before costs were measured has none: it is judged on accuracy alone.
    cost = run_serving_cost(mlflow_client, champion.run_id)
    return [] if cost is None else budget.excess(cost)


def score_version(model_name: str, version: str, test_rows: pd.DataFrame) -> evaluate.Scores:
    """Load a registered version (as the inference service would) and score it."""
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    return evaluate.score(model, test_rows)


def apply(mlflow_client: Any, decision: PromotionDecision) -> None:
    """Record the decision on the version, then move `champion` if it was promoted.

    Tags go first: a version that became champion always says why.
    """
    for key, value in decision.tags().items():
        mlflow_client.set_model_version_tag(decision.model_name, decision.version, key, value)
    if decision.promoted:
        mlflow_client.set_registered_model_alias(decision.model_name, CHAMPION, decision.version)
    log.info("%s", decision.summary())


def existing_version(mlflow_client: Any, model_name: str, run_id: str) -> str | None:
    """The version already registered from `run_id` (a retried register step reuses it)."""
    versions = mlflow_client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    numbers = [int(v.version) for v in versions]
    return str(max(numbers)) if numbers else None
