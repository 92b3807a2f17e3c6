"""The training DAG: its shape (schedule, order, resources) and a dag.test() run end to end
against MariaDB and a real MLflow server. The integrity and policy checks every DAG file gets
are in tests/dags/test_dag_integrity.py."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "forest_cover_model_training.py"
DAG_ID = "forest_cover_model_training"


@pytest.fixture(scope="module")
def training_dag(airflow_home: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[DAG_ID]


def test_scheduled_by_the_extraction_asset_in_task_order(training_dag: Any) -> None:
    from forest_mlops.assets import FOREST_COVER_DATA

    dag = training_dag
    assets = dag.timetable.asset_condition.objects
    assert [a.uri for a in assets] == [FOREST_COVER_DATA.uri]
    order = ["prepare", "train_candidates", "evaluate_candidates", "register_and_promote"]
    for upstream, downstream in itertools.pairwise(order):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    assert dag.max_active_runs == 1


def test_only_the_training_task_gets_a_bigger_pod(training_dag: Any) -> None:
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    dag = training_dag
    overrides = {t.task_id: t.executor_config for t in dag.tasks if t.executor_config}
    assert set(overrides) == {"train_candidates"}
    pod = PodGenerator.from_obj(overrides["train_candidates"])
    (container,) = pod.spec.containers
    assert container.name == "base"  # merged into the KubernetesExecutor's worker container
    # Requests sized to fit the documented cluster (tests/charts/test_sizing.py sums them);
    # limits let a run use two whole cores when they are free.
    assert container.resources.requests == {"cpu": "750m", "memory": "1536Mi"}
    assert container.resources.limits == {"cpu": "2", "memory": "6Gi"}


@pytest.mark.slow
def test_dag_run_trains_registers_and_promotes(
    training_dag: Any,
    mlflow_tracking_server: Any,
    training_table: str,
    model_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forest_mlops.training import registry, tracking

    experiment = f"exp-{model_name}"
    for key, value in {
        "FOREST_DATABASE_URL": training_table,
        "MLFLOW_TRACKING_URI": mlflow_tracking_server.url,
        "FOREST_MODEL_NAME": model_name,
        "FOREST_EXPERIMENT_NAME": experiment,
        "FOREST_TRAINING_PROFILE": "quick",
        "FOREST_TRAINING_JOBS": "1",
    }.items():
        monkeypatch.setenv(key, value)

    run = training_dag.test()

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == dict.fromkeys(
        ["prepare", "train_candidates", "evaluate_candidates", "register_and_promote"], "success"
    )
    client = tracking.client(mlflow_tracking_server.url)
    champion = client.get_model_version_by_alias(model_name, registry.CHAMPION)
    assert champion.tags["promotion.decision"] == registry.PROMOTED_FIRST
    parent_id = client.get_run(champion.run_id).data.tags["mlflow.parentRunId"]
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tracking.TAG_DAG_RUN_ID] == run.run_id
    assert parent.data.tags[tracking.TAG_TRIGGER] == "airflow"
    assert parent.data.tags[tracking.TAG_WINNER_RUN] == champion.run_id
