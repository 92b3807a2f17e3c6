"""Training when MLflow or its artifact store goes away in the middle of a run.

Version 1 (a small contract-following pipeline) is the champion. Then:
- the MLflow server is killed between two candidates of `forest-mlops train` (the retraining
  Job's command): the run fails with exit code 1, no version is registered, no alias moves;
- the run is made again, step by step as the training DAG's tasks run it, with the server back.
  This time S3 goes down after the winner is chosen, in the register-and-promote step: the new
  version may be registered (challenger) but the champion does not move and the version
  carries no promotion decision. The step retried with S3 back reuses that version, decides,
  and only then may move the champion: the re-run succeeds.

The MLflow server and S3 are this module's own (tests/reliability/conftest.py), so stopping them
disturbs no other test.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forest_mlops.training import workflow
from forest_mlops.training.settings import TrainingSettings
from tests.inference import models
from tests.reliability.conftest import OutageStack
from tests.support.processes import VENV_BIN

pytestmark = pytest.mark.slow

# The MLflow client's own retries (7, exponential) would stretch each failure over minutes;
# a few quick ones keep the test short and still exercise them.
FAST_CLIENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


@pytest.fixture(scope="module")
def settings(
    outage_stack: OutageStack, reliability_training_table: str
) -> Iterator[TrainingSettings]:
    saved = {key: os.environ.get(key) for key in FAST_CLIENT}
    os.environ.update(FAST_CLIENT)
    suffix = uuid.uuid4().hex[:8]
    yield TrainingSettings(
        database_url=reliability_training_table,
        tracking_uri=outage_stack.mlflow.url,
        model_name=f"forest-outage-{suffix}",
        experiment_name=f"outage-{suffix}",
        profile="quick",
        n_jobs=1,
    )
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def champion(settings: TrainingSettings, dev_csv: Path) -> str:
    pipeline = models.train_pipeline(models.read_rows(dev_csv, 3000), seed=1, trees=10)
    return models.register(settings.tracking_uri, settings.model_name, pipeline)


def registry_view(settings: TrainingSettings) -> dict[str, Any]:
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    model = client.get_registered_model(settings.model_name)
    versions = client.search_model_versions(f"name = '{settings.model_name}'")
    return {
        "aliases": dict(model.aliases),
        "versions": sorted(int(v.version) for v in versions),
        "decisions": {v.version: v.tags.get("promotion.decision") for v in versions},
    }


def finished_candidates(settings: TrainingSettings, since_ms: int) -> int:
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is None:  # prepare has not run yet
        return 0
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`training.role` = 'candidate' and attributes.status = 'FINISHED' "
        f"and attributes.start_time >= {since_ms}",
    )
    return len(runs)


def train_command(settings: TrainingSettings) -> list[str]:
    return [
        str(VENV_BIN / "forest-mlops"), "train",
        "--database-url", settings.database_url,
        "--tracking-uri", settings.tracking_uri,
        "--model-name", settings.model_name,
        "--experiment-name", settings.experiment_name,
        "--profile", "quick",
    ]  # fmt: skip


def test_mlflow_killed_between_candidates_fails_the_run_and_moves_nothing(
    settings: TrainingSettings, champion: str, outage_stack: OutageStack
) -> None:
    before = registry_view(settings)
    assert before["aliases"] == {"champion": champion}
    since_ms = int(time.time() * 1000) - 1000
    env = {**os.environ, **FAST_CLIENT, "FOREST_TRAINING_JOBS": "1"}
    with subprocess.Popen(
        train_command(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        deadline = time.monotonic() + 180
        while finished_candidates(settings, since_ms) < 1:
            assert proc.poll() is None, f"train ended before the outage: {proc.communicate()}"
            assert time.monotonic() < deadline, "no candidate was logged within 180 s"
            time.sleep(0.2)
        outage_stack.kill_mlflow()  # one candidate logged, the others not yet
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (out, err)
    assert "forest-mlops train: failed:" in err
    assert "registry:" not in out

    outage_stack.restart_mlflow()
    assert registry_view(settings) == before  # no version registered, no alias moved
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    candidates = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`training.role` = 'candidate' and attributes.start_time >= {since_ms}",
    )
    # One candidate finished before the crash; the one being logged never finished.
    assert sum(run.info.status == "FINISHED" for run in candidates) == 1


def test_rerun_with_s3_down_in_the_register_step_never_promotes_and_the_retry_decides(
    settings: TrainingSettings, champion: str, outage_stack: OutageStack
) -> None:
    context = workflow.prepare(settings, trigger="test")
    workflow.train(settings, context)
    winner = workflow.evaluate_candidates(settings, context)
    before = registry_view(settings)

    outage_stack.s3.down()
    try:
        with pytest.raises(MlflowException) as caught:
            workflow.register_and_promote(settings, context, winner)
        during = registry_view(settings)  # the registry itself (MariaDB) still answers
    finally:
        outage_stack.s3.up()
    # The failure is the artifact store's (the server's artifact proxy answers 500), and the
    # step raises it rather than carrying on.
    assert "mlflow-artifacts" in str(caught.value), caught.value
    # The challenger version was created (the registry is in MariaDB, which answers) before
    # scoring had to load it from S3; the champion stayed where it was and the half-done
    # version carries no decision. Exactly one version: the retry below must reuse it.
    assert during["aliases"]["champion"] == before["aliases"]["champion"]
    added = sorted(set(during["versions"]) - set(before["versions"]))
    assert len(added) == 1, during
    assert during["decisions"][str(added[0])] is None

    # The task's retry, S3 back: the same version (no duplicate), a decision, maybe a move.
    decision = workflow.register_and_promote(settings, context, winner)
    after = registry_view(settings)
    assert sorted(set(after["versions"]) - set(before["versions"])) == [int(decision.version)]
    assert added == [int(decision.version)]  # the version the failed attempt created
    assert after["decisions"][decision.version] == decision.decision
    assert after["aliases"]["challenger"] == decision.version
    expected = decision.version if decision.promoted else before["aliases"]["champion"]
    assert after["aliases"]["champion"] == expected
