"""One search, wherever it runs (issue 23): the candidates come from one definition
(training.candidates) for the DAG's mapped tasks, `forest-mlops train` and the demo; a candidate
that fails is left out while the others compete; a candidate over the serving budget is never
chosen; the registered model is the winner refitted on train + validation.

In process, against a local MLflow store (SQLite, local artifacts) and a SQLite training table:
the steps of training.workflow, as the CLI runs them. The DAG's side: tests/training/
test_training_dag.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forest_mlops.training import candidates, pipelines, search, tracking, workflow
from forest_mlops.training.settings import TrainingSettings
from tests.training.conftest import fill_table


@pytest.fixture(scope="module")
def table(labelled_rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('one-search') / 'train.db'}"
    from forest_mlops import database

    engine = database.create_engine(url)
    try:
        database.apply_schema(engine)
    finally:
        engine.dispose()
    fill_table(url, labelled_rows)
    return url


@pytest.fixture
def settings(table: str, tmp_path: Path) -> TrainingSettings:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("exp", artifact_location=(tmp_path / "a").as_uri())
    return TrainingSettings(
        database_url=table,
        tracking_uri=uri,
        experiment_name="exp",
        profile="quick",
        n_jobs=1,
    )


def test_every_runner_reads_the_one_definition() -> None:
    # search (CLI, Job, bench) re-exports the profiles of training.candidates, which the DAG
    # reads at parse time; the demo runs that DAG.
    assert search.PROFILES is candidates.PROFILES
    assert pipelines.CandidateSpec is candidates.CandidateSpec
    for name in candidates.PROFILE_NAMES:
        specs = candidates.profile(name)
        grouped = candidates.by_family(specs)
        assert sorted(n for names in grouped.values() for n in names) == sorted(
            s.name for s in specs
        )
        for spec in specs:
            assert candidates.by_name(spec.name) == spec
    assert len(candidates.by_family(candidates.profile("full"))) >= 3


def test_the_cli_search_trains_each_candidate_of_the_profile_with_the_dags_step(
    settings: TrainingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[str] = []
    step = workflow.train_candidate

    def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
        trained.append(args[2].name)
        return step(*args, **kwargs)

    monkeypatch.setattr(workflow, "train_candidate", recording)
    context = workflow.prepare(settings, trigger="test")
    summaries = workflow.train(settings, context)
    assert trained == [s.name for s in candidates.profile("quick")]
    assert [s["name"] for s in summaries] == trained


def test_a_failing_candidate_is_left_out_and_the_others_compete(
    settings: TrainingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise MemoryError("stand-in for a candidate that cannot fit")

    monkeypatch.setitem(pipelines.BUILDERS, candidates.RANDOM_FOREST, broken)
    outcome = workflow.run_all(settings, trigger="test")

    names = [c["name"] for c in outcome.candidates]
    assert len(names) == len(candidates.profile("quick")) - 1
    assert not any(n.startswith(candidates.RANDOM_FOREST) for n in names)
    assert outcome.decision.promoted
    client = tracking.client(settings.tracking_uri)
    placements = workflow.candidate_placements(client, outcome.context.parent_run_id)
    failed = {n: p for n, p in placements.items() if p["status"] != "finished"}
    assert len(failed) == 1
    ((name, where),) = failed.items()
    assert name.startswith(candidates.RANDOM_FOREST)
    assert where["status"].startswith("failed: stand-in for a candidate")
    assert where["pod"] and where["node"]


def test_every_candidate_failing_fails_the_step(
    settings: TrainingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise ValueError("nothing fits")

    for family in candidates.FAMILIES:
        monkeypatch.setitem(pipelines.BUILDERS, family, broken)
    monkeypatch.setattr(pipelines, "_hist_gradient_boosting_one_hot", lambda *a: broken())
    context = workflow.prepare(settings, trigger="test")
    with pytest.raises(workflow.TrainingError, match="every candidate failed"):
        workflow.train(settings, context)


def test_a_candidate_over_budget_is_never_chosen_and_the_winner_is_refitted(
    settings: TrainingSettings,
) -> None:
    client = tracking.client(settings.tracking_uri)
    context = workflow.prepare(settings, trigger="test")
    summaries = workflow.train(settings, context)

    def rank(s: dict[str, Any]) -> tuple[float, float]:
        return (s["validation_macro_f1"], s["validation_accuracy"])

    best, runner_up = sorted(summaries, key=rank, reverse=True)[:2]
    # The best candidate's measured artifact, as if it were over the 30 MB budget (the latest
    # value of a metric is the one evaluate reads).
    client.log_metric(best["run_id"], "serving_artifact_mb", 31.0)
    no_refit = settings.model_copy(update={"refit": False})

    winner = workflow.evaluate_candidates(no_refit, context)

    assert winner["name"] == runner_up["name"] != best["name"]
    assert winner["refit"] is False
    parent = client.get_run(context.parent_run_id).data
    assert parent.metrics["candidates_within_budget"] == len(summaries) - 1

    # Within the budget again, the best wins and is refitted on train + validation.
    client.log_metric(best["run_id"], "serving_artifact_mb", 1.0)
    refitted = workflow.evaluate_candidates(settings, context)
    assert refitted["name"] == best["name"] and refitted["refit"] is True
    run = client.get_run(refitted["run_id"]).data
    assert run.tags[workflow.TAG_REFIT_OF] == refitted["candidate_run_id"] == best["run_id"]
    assert run.tags[tracking.TAG_ROLE] == "refit"
    assert run.tags[workflow.TAG_NODE]
    assert (
        parent.tags.get(workflow.TAG_NODES)
        or client.get_run(context.parent_run_id).data.tags[workflow.TAG_NODES]
    )
    # The refit is no candidate: evaluating again chooses among the same candidates.
    assert workflow.evaluate_candidates(no_refit, context)["name"] == best["name"]
