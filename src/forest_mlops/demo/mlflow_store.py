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

    client = MlflowClient(tracking_uri=tracking_uri)
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
    version: str
    run_id: str
    tags: dict[str, str]
    # This training run's registered version, which may or may not have become champion.
    new_version: str | None
    new_version_tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingResult:
    parent_run_id: str
    parent_tags: dict[str, str]
    parent_metrics: dict[str, float]
    candidates: list[Candidate]
    champion: Champion | None


def read_training_result(
    tracking_uri: str, experiment_name: str, model_name: str
) -> TrainingResult:
    """The newest parent run of the experiment, its candidate runs, and the registry aliases."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise RuntimeError(f"MLflow has no experiment {experiment_name!r} at {tracking_uri}")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    if not parents:
        raise RuntimeError(f"no finished training run in experiment {experiment_name!r}")
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    candidates = [
        Candidate(
            name=child.info.run_name or child.info.run_id,
            run_id=child.info.run_id,
            metrics=dict(child.data.metrics),
            params=dict(child.data.params),
        )
        for child in sorted(children, key=lambda r: r.info.start_time or 0)
    ]

    champion: Champion | None = None
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except MlflowException:
        current = None
    if current is not None:
        produced = client.search_model_versions(
            f"name = '{model_name}' and run_id = '{parent.info.run_id}'"
        )
        own = _versions_of_run(client, model_name, parent.info.run_id, candidates, produced)
        champion = Champion(
            version=str(current.version),
            run_id=str(current.run_id),
            tags=dict(current.tags or {}),
            new_version=str(own.version) if own is not None else None,
            new_version_tags=dict(own.tags or {}) if own is not None else {},
        )
    return TrainingResult(
        parent_run_id=parent.info.run_id,
        parent_tags=dict(parent.data.tags),
        parent_metrics=dict(parent.data.metrics),
        candidates=candidates,
        champion=champion,
    )


def _versions_of_run(
    client: Any, model_name: str, parent_run_id: str, candidates: list[Candidate], produced: Any
) -> Any:
    """The model version this training run registered (logged by the parent or a candidate)."""
    if produced:
        return max(produced, key=lambda v: int(v.version))
    run_ids = {c.run_id for c in candidates}
    versions = client.search_model_versions(f"name = '{model_name}'")
    own = [v for v in versions if v.run_id in run_ids]
    return max(own, key=lambda v: int(v.version)) if own else None
