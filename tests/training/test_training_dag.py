"""The training DAG: its shape (schedule, order, resources) and a dag.test() run end to end
against MariaDB and a real MLflow server. The integrity and policy checks every DAG file gets
are in tests/dags/test_dag_integrity.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "forest_cover_model_training.py"
DAG_ID = "forest_cover_model_training"


def parse(monkeypatch: pytest.MonkeyPatch | None = None, profile: str | None = None) -> Any:
    """The DAG as the DAG processor parses it; the profile is read at parse time."""
    from airflow.dag_processing.dagbag import DagBag

    if monkeypatch is not None and profile is not None:
        monkeypatch.setenv("FOREST_TRAINING_PROFILE", profile)
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[DAG_ID]


@pytest.fixture(scope="module")
def training_dag(airflow_home: Path) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FOREST_TRAINING_PROFILE", "full")
        return parse()


def train_tasks(dag: Any) -> dict[str, Any]:
    return {t.task_id: t for t in dag.tasks if t.task_id.startswith("train_")}


def test_scheduled_by_the_extraction_asset_in_task_order(training_dag: Any) -> None:
    from forest_mlops.assets import FOREST_COVER_DATA

    dag = training_dag
    assets = dag.timetable.asset_condition.objects
    assert [a.uri for a in assets] == [FOREST_COVER_DATA.uri]
    trains = train_tasks(dag)
    assert trains
    for task_id in trains:
        assert "prepare" in dag.get_task(task_id).upstream_task_ids
        assert task_id in dag.get_task("evaluate_candidates").upstream_task_ids
    assert "evaluate_candidates" in dag.get_task("register_and_promote").upstream_task_ids
    assert dag.max_active_runs == 1


@pytest.mark.parametrize("profile", ["full", "quick"])
def test_one_mapped_task_per_family_expanding_to_each_candidate_of_the_profile(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from forest_mlops.training import candidates

    dag = parse(monkeypatch, profile)
    specs = candidates.profile(profile)
    trains = train_tasks(dag)
    assert set(trains) == {f"train_{s.family}" for s in specs}
    expanded: list[str] = []
    for task_id, task in trains.items():
        assert isinstance(task, MappedOperator), task_id
        names = task.op_kwargs_expand_input.value["candidate"]
        family = task_id.removeprefix("train_")
        assert all(candidates.by_name(n).family == family for n in names)
        expanded += names
    # One task instance (one pod) per candidate: every candidate once, nothing else.
    assert sorted(expanded) == sorted(s.name for s in specs)


def test_the_full_profile_compares_three_families(training_dag: Any) -> None:
    assert len(train_tasks(training_dag)) >= 3


def test_candidate_pods_are_sized_per_family_and_spread_over_nodes(training_dag: Any) -> None:
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    dag = training_dag
    overrides = {t.task_id: t.executor_config for t in dag.tasks if t.executor_config}
    trains = set(train_tasks(dag))
    # The refit in evaluate_candidates fits on 85 % of the rows: the bigger pod.
    assert set(overrides) == trains | {"evaluate_candidates"}
    requests = {}
    for task_id in trains:
        pod = PodGenerator.from_obj(overrides[task_id])
        (container,) = pod.spec.containers
        assert container.name == "base"  # merged into the KubernetesExecutor's worker container
        requests[task_id] = container.resources.requests
        assert container.resources.limits["cpu"] and container.resources.limits["memory"]
        (spread,) = pod.spec.topology_spread_constraints
        assert spread.topology_key == "kubernetes.io/hostname"
        # Soft: a candidate never waits Pending for a node that has fewer candidates.
        assert spread.when_unsatisfiable == "ScheduleAnyway"
        assert spread.label_selector.match_labels.items() <= pod.metadata.labels.items()
    # Boosting fits on one thread and asks for less memory than the forests.
    assert requests["train_hist_gradient_boosting"] != requests["train_extra_trees"]
    evaluate = PodGenerator.from_obj(overrides["evaluate_candidates"])
    (container,) = evaluate.spec.containers
    assert container.resources.requests == {"cpu": "750m", "memory": "1536Mi"}
    assert container.resources.limits == {"cpu": "2", "memory": "6Gi"}
    # As many candidate pods at once as the documented cluster holds (tests/charts/test_sizing).
    assert dag.max_active_tasks == 2


def test_a_failed_candidate_fails_alone(training_dag: Any) -> None:
    from airflow.sdk import TriggerRule

    for task in train_tasks(training_dag).values():
        assert task.retries >= 1
    evaluate = training_dag.get_task("evaluate_candidates")
    assert evaluate.trigger_rule == TriggerRule.ALL_DONE_MIN_ONE_SUCCESS


def quick_env(
    monkeypatch: pytest.MonkeyPatch, server_url: str, table: str, model_name: str
) -> None:
    for key, value in {
        "FOREST_DATABASE_URL": table,
        "MLFLOW_TRACKING_URI": server_url,
        "FOREST_MODEL_NAME": model_name,
        "FOREST_EXPERIMENT_NAME": f"exp-{model_name}",
        "FOREST_TRAINING_PROFILE": "quick",
        "FOREST_TRAINING_JOBS": "1",
        "FOREST_POD_NAME": "task-pod-1",
        "FOREST_NODE_NAME": "worker-a",
    }.items():
        monkeypatch.setenv(key, value)


def states(run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.slow
def test_dag_run_trains_registers_and_promotes(
    airflow_home: Path,
    mlflow_tracking_server: Any,
    training_table: str,
    model_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forest_mlops.training import candidates, registry, tracking, workflow

    quick_env(monkeypatch, mlflow_tracking_server.url, training_table, model_name)
    dag = parse()

    run = dag.test()

    quick = candidates.profile("quick")
    seen = states(run)
    assert set(seen.values()) == {"success"}, seen
    # One mapped task instance per candidate, under its family's task.
    expected = {
        (f"train_{family}", index)
        for family, names in candidates.by_family(quick).items()
        for index in range(len(names))
    }
    assert {k for k in seen if k[0].startswith("train_")} == expected
    assert len(expected) == len(quick)
    client = tracking.client(mlflow_tracking_server.url)
    champion = client.get_model_version_by_alias(model_name, registry.CHAMPION)
    assert champion.tags["promotion.decision"] == registry.PROMOTED_FIRST
    parent_id = client.get_run(champion.run_id).data.tags["mlflow.parentRunId"]
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tracking.TAG_DAG_RUN_ID] == run.run_id
    assert parent.data.tags[tracking.TAG_TRIGGER] == "airflow"
    assert parent.data.tags[tracking.TAG_WINNER_RUN] == champion.run_id
    # The registered model is the winner refitted on train + validation.
    registered = client.get_run(champion.run_id)
    assert parent.data.tags[workflow.TAG_REFIT] == "true"
    refit_of = client.get_run(registered.data.tags[workflow.TAG_REFIT_OF])
    assert refit_of.data.tags[tracking.TAG_IS_WINNER] == "true"
    assert registered.data.tags[tracking.TAG_ROLE] == "refit"
    # Where every candidate ran: on the parent run and on each candidate's run.
    placements = workflow.candidate_placements(client, parent_id)
    assert len(placements) == len(quick)
    for where in placements.values():
        assert where["status"] == "finished"
        assert (where["pod"], where["node"]) == ("task-pod-1", "worker-a")
    assert parent.data.tags[workflow.TAG_NODES] == "worker-a"
    assert refit_of.data.tags[workflow.TAG_NODE] == "worker-a"


@pytest.mark.slow
def test_a_failing_candidate_fails_alone_and_the_others_still_compete(
    airflow_home: Path,
    mlflow_tracking_server: Any,
    training_table: str,
    model_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forest_mlops.training import candidates, pipelines, registry, tracking, workflow

    quick_env(monkeypatch, mlflow_tracking_server.url, training_table, model_name)
    attempts: list[int] = []

    def broken(*args: Any) -> Any:
        attempts.append(1)
        raise MemoryError("stand-in for a candidate that cannot fit")

    # dag.test() runs each task in this process, so the patched builder is what the task sees.
    monkeypatch.setitem(pipelines.BUILDERS, candidates.RANDOM_FOREST, broken)
    dag = parse()
    failing = dag.get_task(f"train_{candidates.RANDOM_FOREST}")
    failing.retry_delay = dt.timedelta(0)  # the retry itself, without its 30 s wait

    run = dag.test()

    seen = states(run)
    assert seen[(f"train_{candidates.RANDOM_FOREST}", 0)] == "failed"
    assert len(attempts) == failing.retries + 1  # retried, then failed for good
    others = {k: v for k, v in seen.items() if k[0] != f"train_{candidates.RANDOM_FOREST}"}
    assert set(others.values()) == {"success"}, seen
    assert str(run.state) == "success"
    client = tracking.client(mlflow_tracking_server.url)
    champion = client.get_model_version_by_alias(model_name, registry.CHAMPION)
    parent_id = client.get_run(champion.run_id).data.tags["mlflow.parentRunId"]
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tracking.TAG_WINNER_NAME].split("-")[0] != candidates.RANDOM_FOREST
    assert parent.data.metrics["candidates_finished"] == len(candidates.profile("quick")) - 1
    placements = workflow.candidate_placements(client, parent_id)
    (rf,) = [p for name, p in placements.items() if name.startswith(candidates.RANDOM_FOREST)]
    assert rf["status"].startswith("failed: stand-in for a candidate")
