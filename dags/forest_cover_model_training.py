"""
### forest_cover_model_training

Turns the rows in `train_data.forest_cover_data` into the model that is served.

Scheduled by the Asset `forest_cover_data` (updated by `forest_cover_data_extraction` whenever
new rows land) and runnable by hand. One run:

1. **prepare**: records the data snapshot (rows with id ≤ the current maximum, their SHA-256
   fingerprint and batches) and opens the parent MLflow run with the lineage tags;
2. **train_candidates**: reads the snapshot again, splits it by row hash into
   train/validation/test (70/15/15; a row never changes part), fits the profile's candidates
   (RandomForest, ExtraTrees, HistGradientBoosting) and logs each as a nested MLflow run with
   its metrics, confusion matrices, feature importances and model. Runs with more CPU and
   memory than the other tasks (pod_override);
3. **evaluate_candidates**: picks the best validation macro-F1 from MLflow and checks that
   its logged model reproduces its test score;
4. **register_and_promote**: registers the winner as `FOREST_MODEL_NAME` (alias
   `challenger`) and moves `champion` only if it beats the champion, re-scored on the same
   test rows, by `FOREST_PROMOTION_MARGIN`.

Tasks may run in separate pods: rows come from MySQL, models and metrics from MLflow, XCom
carries only the parent run id and the snapshot. Configuration comes from the environment at
run time (`FOREST_DATABASE_URL`, `MLFLOW_TRACKING_URI`, `FOREST_MODEL_NAME`,
`FOREST_EXPERIMENT_NAME`, `FOREST_PROMOTION_MARGIN`, `FOREST_TRAINING_PROFILE`,
`FOREST_DATA_SYNTHETIC`). See docs/MLFLOW.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import dag, get_current_context, task
from kubernetes.client import models as k8s

from forest_mlops.assets import FOREST_COVER_DATA

log = logging.getLogger(__name__)

# The training task fits several ensembles on two cores; the other tasks only read rows and
# talk to MLflow. "base" is the worker container of the KubernetesExecutor's pod template.
# Requests are what the scheduler reserves: small enough that the platform, a training run, a
# retraining Job and one more task pod fit the documented kind cluster (4 CPUs, 8 GiB; docs/
# KUBERNETES.md, tests/charts/test_sizing.py) instead of leaving the pod Pending and the DAG
# hanging; the limits let a run use two whole cores and a large dataset when they are free.
TRAINING_POD = {
    "pod_override": k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(
                    name="base",
                    resources=k8s.V1ResourceRequirements(
                        requests={"cpu": "750m", "memory": "1536Mi"},
                        limits={"cpu": "2", "memory": "6Gi"},
                    ),
                )
            ]
        )
    )
}


def _settings() -> Any:
    from forest_mlops.training.settings import TrainingSettings

    return TrainingSettings()


def _context(run: dict[str, Any]) -> Any:
    from forest_mlops.training.workflow import RunContext

    return RunContext.from_dict(run)


def _mark_parent_failed(context: Any) -> None:
    """After a task's last retry fails, close the parent MLflow run as FAILED."""
    from forest_mlops.training import workflow

    run = context["ti"].xcom_pull(task_ids="prepare")
    if run:
        workflow.fail_run(_settings(), _context(run))


@dag(
    dag_id="forest_cover_model_training",
    schedule=[FOREST_COVER_DATA],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    # One training at a time: two runs would race for the champion alias.
    max_active_runs=1,
    # Runs as soon as it is deployed: Airflow's default (dags_are_paused_at_creation) would
    # leave a fresh install collecting, training and serving nothing until someone unpauses.
    is_paused_upon_creation=False,
    tags=["forest-mlops", "training", "mlflow"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "on_failure_callback": _mark_parent_failed,
    },
)
def forest_cover_model_training() -> None:
    @task
    def prepare() -> dict[str, Any]:
        from forest_mlops.training import workflow

        dag_run_id = str(get_current_context()["run_id"])
        context = workflow.prepare(_settings(), trigger="airflow", dag_run_id=dag_run_id)
        return dict(context.to_dict())

    @task(executor_config=TRAINING_POD, execution_timeout=dt.timedelta(minutes=30))
    def train_candidates(run: dict[str, Any]) -> list[dict[str, Any]]:
        from forest_mlops.training import workflow

        return workflow.train(_settings(), _context(run))

    @task
    def evaluate_candidates(
        run: dict[str, Any], candidates: list[dict[str, Any]]
    ) -> dict[str, Any]:
        from forest_mlops.training import workflow

        log.info("%d candidates trained; choosing from MLflow", len(candidates))
        return workflow.evaluate_candidates(_settings(), _context(run))

    @task
    def register_and_promote(run: dict[str, Any], winner: dict[str, Any]) -> dict[str, Any]:
        from forest_mlops.training import workflow

        decision = workflow.register_and_promote(_settings(), _context(run), winner)
        log.info("%s", decision.summary())
        return dict(decision.to_dict())

    run = prepare()
    # At parse time a TaskFlow call returns an XComArg, which Airflow resolves to the value the
    # task is typed with when the downstream task runs; the stubs only know the former.
    register_and_promote(run, evaluate_candidates(run, train_candidates(run)))  # type: ignore[arg-type]


forest_cover_model_training()
