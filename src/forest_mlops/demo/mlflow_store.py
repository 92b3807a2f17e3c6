"""The MLflow side of the demo: the local store, and what the training run recorded there.

The local store is `sqlite:///<workdir>/mlflow/mlflow.db` with artifacts under
`<workdir>/mlflow/artifacts`. The experiment is created here, before training, so that its
artifact location is in the work directory (MLflow would otherwise pick ./mlruns of whatever
directory the training ran in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> str:
    """Create the experiment when missing (with `artifact_location`); returns its id."""
    from mlflow.tracking import MlflowClient

    # MLflow logs its store migrations to the console; the demo's output is its own.
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


@dataclass(frozen=True)
class Candidate:
    name: str
    run_id: str
    metrics: dict[str, float]
    params: dict[str, str]


@dataclass(frozen=True)
class Champion:
    """The version the alias `champion` points at after the run."""

    version: str
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingResult:
    parent_run_id: str
    parent_tags: dict[str, str]
    parent_metrics: dict[str, float]
    candidates: list[Candidate]
    champion: Champion | None

    @property
    def registered_version(self) -> str | None:
        """The version this run registered (the training tags its parent run with it)."""
        return self.parent_tags.get("registry.version")

    @property
    def promotion(self) -> dict[str, str]:
        """The promotion decision and its numbers (`promotion.*` tags of the parent run)."""
        prefix = "promotion."
        return {k[len(prefix) :]: v for k, v in self.parent_tags.items() if k.startswith(prefix)}


def _child_name(run: Any) -> str:
    name = str(run.info.run_name or run.info.run_id)
    # The registered model is the winner refitted on train + validation: a run of the same
    # name, which the summary must not show as a second candidate.
    if run.data.tags.get("training.role") == "refit":
        return f"{name} (refit on train+validation)"
    return name


def read_training_result(
    tracking_uri: str, experiment_name: str, model_name: str
) -> TrainingResult:
    """The newest finished parent run of the experiment, its candidates, and the champion."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise RuntimeError(f"MLflow has no experiment {experiment_name!r} at {tracking_uri}")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=500,
    )
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    if not parents:
        raise RuntimeError(f"no finished training run in experiment {experiment_name!r}")
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    candidates = [
        Candidate(
            name=_child_name(child),
            run_id=child.info.run_id,
            metrics=dict(child.data.metrics),
            params=dict(child.data.params),
        )
        for child in sorted(children, key=lambda r: r.info.start_time or 0)
    ]
    champion: Champion | None = None
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
        champion = Champion(
            version=str(current.version), run_id=str(current.run_id), tags=dict(current.tags)
        )
    except MlflowException as exc:
        log.info("no %s@%s: %s", model_name, CHAMPION_ALIAS, exc)
    return TrainingResult(
        parent_run_id=parent.info.run_id,
        parent_tags=dict(parent.data.tags),
        parent_metrics=dict(parent.data.metrics),
        candidates=candidates,
        champion=champion,
    )
