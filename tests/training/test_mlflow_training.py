"""Training against real services: MariaDB, a real `mlflow server` (MariaDB backend, moto S3
artifacts through the server's proxy) and `forest-mlops train` as a subprocess.

Covers: train → registered version with alias champion → loaded in a fresh process; lineage and
explanations in MLflow; promotion (worse keeps the champion, better moves it, the margin);
MLflow down → a clear failure and no alias moves.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forest_mlops import dataset, schema
from forest_mlops.serving.cost import Budget
from forest_mlops.training import registry, split, tracking, workflow
from forest_mlops.training.pipelines import HIST_GRADIENT_BOOSTING, RANDOM_FOREST, CandidateSpec
from forest_mlops.training.settings import TrainingSettings
from tests.conftest import start_mlflow_server
from tests.support.processes import VENV_BIN
from tests.training.conftest import BATCHES, TABLE_ROWS

pytestmark = pytest.mark.slow

# A stump: one tree of depth 1 predicts at most two classes, so its macro-F1 is far below any
# real candidate's. It is the "worse model" of the promotion tests.
WEAK = [CandidateSpec(RANDOM_FOREST, {"n_estimators": 1, "max_depth": 1})]
# One real candidate (the quick profile's boosting model), far better than the stump.
GOOD = [CandidateSpec(HIST_GRADIENT_BOOSTING, {"max_iter": 30, "max_leaf_nodes": 15})]


def settings(server_url: str, database_url: str, model_name: str, **extra: Any) -> TrainingSettings:
    return TrainingSettings(
        database_url=database_url,
        tracking_uri=server_url,
        model_name=model_name,
        experiment_name=f"exp-{model_name}",
        profile="quick",
        n_jobs=1,
        **extra,
    )


def alias_version(client: Any, name: str, alias: str) -> str:
    return str(client.get_model_version_by_alias(name, alias).version)


@dataclass(frozen=True)
class CliRun:
    model_name: str
    stdout: str
    synthetic: bool


@pytest.fixture(scope="module")
def cli_run(mlflow_tracking_server: Any, training_table: str, dev_csv: Path) -> Iterator[CliRun]:
    """`forest-mlops train --profile quick` once, in its own process, on the training table."""
    name = f"forest-cover-type-cli-{os.getpid()}"
    synthetic = dataset.is_synthetic(dev_csv)
    argv = [
        str(VENV_BIN / "forest-mlops"),
        "train",
        "--database-url",
        training_table,
        "--tracking-uri",
        mlflow_tracking_server.url,
        "--model-name",
        name,
        "--experiment-name",
        f"exp-{name}",
        "--profile",
        "quick",
        *(["--synthetic"] if synthetic else []),
    ]
    env = {**os.environ, "FOREST_TRAINING_JOBS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    yield CliRun(name, done.stdout, synthetic)


def test_cli_registers_the_first_version_as_champion(
    cli_run: CliRun, mlflow_tracking_server: Any
) -> None:
    client = tracking.client(mlflow_tracking_server.url)
    assert alias_version(client, cli_run.model_name, registry.CHAMPION) == "1"
    tags = client.get_model_version(cli_run.model_name, "1").tags
    assert tags["promotion.decision"] == registry.PROMOTED_FIRST
    assert tags["promotion.champion_version"] == ""
    assert float(tags["promotion.challenger_test_macro_f1"]) > 0.3
    for family in ("hist_gradient_boosting", "extra_trees", "random_forest"):
        assert family in cli_run.stdout
    assert "promoted_first" in cli_run.stdout


def test_champion_predicts_raw_records_in_a_fresh_process(
    cli_run: CliRun, mlflow_tracking_server: Any, labelled_rows: pd.DataFrame
) -> None:
    test_rows = split.split_frame(labelled_rows).test.head(200)
    records = test_rows[list(schema.FEATURE_COLUMNS)].to_dict(orient="records")
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "frame = pd.DataFrame(json.load(sys.stdin))\n"
        "print(json.dumps([int(v) for v in model.predict(frame)]))\n"
    )
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", script, f"models:/{cli_run.model_name}@champion"],
        input=json.dumps(records),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_tracking_server.url},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    predicted = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(predicted) == len(records)
    assert set(predicted) <= set(schema.COVER_TYPES)
    accuracy = (pd.Series(predicted) == test_rows["Cover_Type"].to_numpy()).mean()
    assert accuracy > 0.6  # a real model, not a constant


def test_runs_record_lineage_metrics_and_artifacts(
    cli_run: CliRun, mlflow_tracking_server: Any, labelled_rows: pd.DataFrame
) -> None:
    client = tracking.client(mlflow_tracking_server.url)
    experiment = client.get_experiment_by_name(f"exp-{cli_run.model_name}")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(tracking.TAG_ROLE) == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags[tracking.TAG_ROWS] == str(TABLE_ROWS)
    assert tags[tracking.TAG_BATCHES] == f"group 1: 0-{BATCHES - 1}"
    assert tags[tracking.TAG_DATA_HASH] == split.data_fingerprint(split.row_hashes(labelled_rows))
    assert tags[tracking.TAG_SYNTHETIC] == str(cli_run.synthetic).lower()
    assert tags[tracking.TAG_TRIGGER] == "cli"
    assert tags["promotion.decision"] == registry.PROMOTED_FIRST

    # The three candidates, and the winner refitted on train + validation (issue 23).
    candidates = [c for c in children if c.data.tags[tracking.TAG_ROLE] == "candidate"]
    (refit,) = [c for c in children if c.data.tags[tracking.TAG_ROLE] == "refit"]
    assert len(candidates) == 3
    best = max(candidates, key=lambda r: r.data.metrics["validation_macro_f1"])
    assert refit.data.tags[workflow.TAG_REFIT_OF] == best.info.run_id
    assert refit.info.run_name == best.info.run_name
    assert tags[tracking.TAG_WINNER_RUN] == refit.info.run_id
    assert tags[tracking.TAG_WINNER_NAME] == best.info.run_name
    for child in children:
        assert child.data.tags[tracking.TAG_DATA_HASH] == tags[tracking.TAG_DATA_HASH]
        metrics = child.data.metrics
        for key in (
            "validation_accuracy",
            "test_macro_f1",
            "test_f1_class_0",
            "fit_seconds",
            # What it costs to serve, measured on the logged artifact (issue 16).
            "serving_artifact_mb",
            "serving_load_cpu_seconds",
            "serving_single_p99_ms",
            "serving_batch_cpu_p50_ms",
            "serving_load_average_1m",
        ):
            assert key in metrics, (child.info.run_name, key)
        assert metrics["serving_artifact_mb"] > 0
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {
            "confusion_matrix_test.png",
            "confusion_matrix_validation.png",
            "feature_importances.json",
            "feature_importances.png",
        } <= artifacts
        importances = json.loads(
            Path(
                client.download_artifacts(child.info.run_id, "feature_importances.json")
            ).read_text()
        )
        assert "Elevation" in importances["importances"]

    import mlflow

    # Version 1 is this run's winner (refitted), as the registry serves it.
    version = client.get_model_version(cli_run.model_name, "1")
    assert version.run_id == refit.info.run_id
    registered = f"models:/{cli_run.model_name}/1"
    info = mlflow.models.get_model_info(registered)
    assert [c["name"] for c in info.signature.inputs.to_dict()] == list(schema.FEATURE_COLUMNS)
    requirements = Path(mlflow.pyfunc.get_model_dependencies(registered)).read_text()
    assert "scikit-learn==" in requirements
    # The quick profile's winner is its compiled forest (unless a sklearn one scores higher).
    if best.data.tags[tracking.TAG_SERVING_FORM] == "onnx":
        assert "sklearn" not in info.flavors
        assert "python_function" in info.flavors
        assert "onnxruntime==" in requirements
    else:
        assert info.flavors["sklearn"]["serialization_format"] == "skops"


def test_a_worse_model_does_not_move_the_champion(
    cli_run: CliRun, mlflow_tracking_server: Any, training_table: str
) -> None:
    config = settings(mlflow_tracking_server.url, training_table, cli_run.model_name)
    outcome = workflow.run_all(config, trigger="test", candidates=WEAK)
    client = tracking.client(mlflow_tracking_server.url)
    decision = outcome.decision
    assert decision.decision == registry.KEPT
    assert decision.champion_version == "1"
    assert decision.champion_macro_f1 is not None
    assert decision.champion_macro_f1 > decision.challenger_macro_f1
    assert alias_version(client, cli_run.model_name, registry.CHAMPION) == "1"
    assert alias_version(client, cli_run.model_name, registry.CHALLENGER) == decision.version
    tags = client.get_model_version(cli_run.model_name, decision.version).tags
    assert tags["promotion.decision"] == registry.KEPT
    assert float(tags["promotion.champion_test_macro_f1"]) == decision.champion_macro_f1
    assert tags["promotion.test_rows"] == str(decision.test_rows)


def test_a_better_model_moves_the_champion_unless_the_margin_forbids_it(
    mlflow_tracking_server: Any, training_table: str, model_name: str
) -> None:
    config = settings(mlflow_tracking_server.url, training_table, model_name)
    weak = workflow.run_all(config, trigger="test", candidates=WEAK).decision
    assert weak.decision == registry.PROMOTED_FIRST

    better = workflow.run_all(config, trigger="test", candidates=GOOD).decision
    client = tracking.client(mlflow_tracking_server.url)
    assert better.decision == registry.PROMOTED
    assert better.champion_version == weak.version
    # The old champion was re-scored on the same rows, and scores what it scored before.
    assert better.champion_macro_f1 == pytest.approx(weak.challenger_macro_f1)
    assert better.challenger_macro_f1 > better.champion_macro_f1
    assert alias_version(client, model_name, registry.CHAMPION) == better.version

    # The same comparison with a margin larger than the gap keeps the champion.
    test_rows = split.split_frame(pd.DataFrame(_table(training_table))).test
    challenger = registry.score_version(model_name, better.version, test_rows)
    strict = registry.decide(
        client,
        model_name,
        weak.version,
        challenger,
        test_rows,
        margin=1.0,
        budget=Budget(),
        serving=registry.run_serving_cost(client, outcome_run_id(client, model_name, better)),
    )
    assert strict.decision == registry.KEPT


def outcome_run_id(client: Any, model_name: str, decision: registry.PromotionDecision) -> str:
    return str(client.get_model_version(model_name, decision.version).run_id)


def test_a_candidate_over_budget_is_not_promoted_and_the_version_says_why(
    mlflow_tracking_server: Any, training_table: str, model_name: str
) -> None:
    client = tracking.client(mlflow_tracking_server.url)
    tight = settings(
        mlflow_tracking_server.url, training_table, model_name, budget_artifact_mb=0.01
    )
    outcome = workflow.run_all(tight, trigger="test", candidates=GOOD)
    decision = outcome.decision

    # Over budget: not promoted, although there is no champion at all to beat.
    assert decision.decision == registry.OVER_BUDGET
    assert not decision.promoted
    assert registry.current_champion(client, model_name) is None
    assert alias_version(client, model_name, registry.CHALLENGER) == decision.version
    assert decision.champion_macro_f1 is None  # accuracy was never compared

    tags = client.get_model_version(model_name, decision.version).tags
    assert tags["promotion.decision"] == registry.OVER_BUDGET
    size = float(tags["promotion.serving_artifact_mb"])
    assert tags["promotion.reason"] == f"over budget: artifact {size:.1f} MB > 0.01 MB"
    assert tags["promotion.budget.artifact_mb"] == "0.01"
    assert tags["promotion.budget.load_seconds"] == "3"
    assert tags["promotion.budget.batch_p50_ms"] == "30"
    # The cost on the version is the one measured on the candidate's run, beside its scores.
    metrics = client.get_run(outcome.winner["run_id"]).data.metrics
    assert metrics["serving_artifact_mb"] == pytest.approx(size)
    assert metrics["serving_batch_cpu_p50_ms"] > 0
    assert metrics["validation_macro_f1"] > 0.5
    assert 0.01 < size < 30

    # The budget, not the model, stopped it: with the default budget it becomes champion.
    retry = workflow.run_all(
        settings(mlflow_tracking_server.url, training_table, model_name),
        trigger="test",
        candidates=GOOD,
    ).decision
    assert retry.decision == registry.PROMOTED_FIRST, retry.reason
    assert retry.reason == "within budget; no champion"
    assert alias_version(client, model_name, registry.CHAMPION) == retry.version


def _table(url: str) -> pd.DataFrame:
    from forest_mlops import database

    engine = database.create_engine(url)
    try:
        return database.read_training_frame(engine)
    finally:
        engine.dispose()


@pytest.fixture
def stopped_mlflow_url(
    make_mysql_database: Callable[[str], str], s3_server: str, tmp_path: Path
) -> str:
    """The URL of a real MLflow server that ran and was stopped: "MLflow is down" for real."""
    server = start_mlflow_server(
        backend_url=make_mysql_database("fmdown"),
        s3_endpoint=s3_server,
        bucket=f"down-{uuid.uuid4().hex[:8]}",
        log_path=tmp_path / "mlflow-down.log",
    )
    server.process.stop()
    return server.url


def test_mlflow_down_fails_clearly_and_moves_no_alias(
    cli_run: CliRun, mlflow_tracking_server: Any, training_table: str, stopped_mlflow_url: str
) -> None:
    client = tracking.client(mlflow_tracking_server.url)
    champion_before = alias_version(client, cli_run.model_name, registry.CHAMPION)
    versions_before = len(client.search_model_versions(f"name = '{cli_run.model_name}'"))
    dead = stopped_mlflow_url

    # The whole run: refused before anything is trained.
    with pytest.raises(tracking.TrackingUnavailable, match=f"{dead} is not reachable"):
        workflow.run_all(settings(dead, training_table, cli_run.model_name), trigger="test")

    # The register step alone, after a real prepare/train/evaluate, loses its server.
    live = settings(mlflow_tracking_server.url, training_table, cli_run.model_name)
    context = workflow.prepare(live, trigger="test")
    workflow.train(live, context, WEAK)
    winner = workflow.evaluate_candidates(live, context)
    with pytest.raises(tracking.TrackingUnavailable, match="not reachable"):
        workflow.register_and_promote(
            settings(dead, training_table, cli_run.model_name), context, winner
        )

    # The command line says so too, with exit code 1.
    done = subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "train", "--database-url", training_table,
         "--tracking-uri", dead, "--model-name", cli_run.model_name, "--profile", "quick"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"MLflow tracking server {dead} is not reachable" in done.stderr

    client = tracking.client(mlflow_tracking_server.url)
    assert alias_version(client, cli_run.model_name, registry.CHAMPION) == champion_before
    after = client.search_model_versions(f"name = '{cli_run.model_name}'")
    assert len(after) == versions_before


def test_a_champion_over_budget_gives_way_to_a_version_within_it(
    mlflow_tracking_server: Any, training_table: str, model_name: str
) -> None:
    config = settings(mlflow_tracking_server.url, training_table, model_name)
    good = workflow.run_all(config, trigger="test", candidates=GOOD).decision
    weak = workflow.run_all(config, trigger="test", candidates=WEAK).decision
    assert (good.decision, weak.decision) == (registry.PROMOTED_FIRST, registry.KEPT)
    assert good.serving is not None and weak.serving is not None
    # A budget between the two sizes: the stump fits, the champion does not.
    assert weak.serving.artifact_mb < good.serving.artifact_mb
    limit = (weak.serving.artifact_mb + good.serving.artifact_mb) / 2
    budget = Budget(artifact_mb=limit, load_seconds=1e6, batch_p50_ms=1e6)

    client = tracking.client(mlflow_tracking_server.url)
    test_rows = split.split_frame(pd.DataFrame(_table(training_table))).test
    challenger = registry.score_version(model_name, weak.version, test_rows)
    decision = registry.decide(
        client, model_name, weak.version, challenger, test_rows, 0.0, budget=budget,
        serving=weak.serving,
    )  # fmt: skip
    assert decision.decision == registry.PROMOTED
    assert decision.reason == (
        f"within budget; champion v{good.version} is over budget: artifact "
        f"{good.serving.artifact_mb:.1f} MB > {limit:g} MB"
    )
    # It gave way although it is the more accurate of the two.
    assert decision.champion_macro_f1 is not None
    assert decision.champion_macro_f1 > decision.challenger_macro_f1
