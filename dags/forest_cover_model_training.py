"""
### forest_cover_model_training

Turns the rows in `train_data.forest_cover_data` into the model that is served.

Scheduled by the Asset `forest_cover_data` (updated by `forest_cover_data_extraction` whenever
new rows land) and runnable by hand. One run:

1. **prepare**: records the data snapshot (rows with id ≤ the current maximum, their SHA-256
   fingerprint and batches) and opens the parent MLflow run with the lineage tags;
2. **train_<family>** (one mapped task per model family, one task instance and so one pod per
   candidate of the profile): reads the snapshot again, splits it by row hash into
   train/validation/test (70/15/15; a row never changes part), fits its candidate and logs it
   as a nested MLflow run with its metrics, confusion matrices, feature importances, model and
   where it ran (pod and node, also on the parent run: `placement.<candidate>`). Each family's
   pods ask for what its fits need (pod_override) and spread over the nodes; a candidate that
   still fails after its retries fails alone: the others compete without it;
3. **evaluate_candidates** (once every candidate is done and at least one succeeded): picks
   the best validation macro-F1 within the serving budget from MLflow, checks that its logged
   model reproduces its test score, and refits it on train + validation (the model that is
   registered; the test part stays out for the gate). Records where each candidate ran
   (`placement.json`, `training.nodes`);
4. **register_and_promote**: registers the winner as `FOREST_MODEL_NAME` (alias
   `challenger`) and moves `champion` only if it beats the champion, re-scored on the same
   test rows, by `FOREST_PROMOTION_MARGIN`.

Tasks may run in separate pods: rows come from MySQL, models and metrics from MLflow, XCom
carries only the parent run id and the snapshot. Configuration comes from the environment at
run time (`FOREST_DATABASE_URL`, `MLFLOW_TRACKING_URI`, `FOREST_MODEL_NAME`,
`FOREST_EXPERIMENT_NAME`, `FOREST_PROMOTION_MARGIN`, `FOREST_TRAINING_PROFILE`,
`FOREST_DATA_SYNTHETIC`, `FOREST_TRAINING_REFIT`). The profile's candidates are read when the
file is parsed (`FOREST_TRAINING_PROFILE`, default `full`; forest_mlops.training.candidates),
as are `FOREST_TRAINING_MAX_PODS` (candidate pods at once, default 2: the kind cluster's
workers); every task then trains that profile. See docs/MLFLOW.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import TriggerRule, dag, get_current_context, task
from kubernetes.client import models as k8s

from forest_mlops.assets import FOREST_COVER_DATA
from forest_mlops.training import candidates

log = logging.getLogger(__name__)

# Read at parse time (no database or network access): which candidates the mapped tasks
# expand over. candidates holds no scikit-learn import, so parsing stays cheap.
PROFILE = os.environ.get("FOREST_TRAINING_PROFILE", "full")
CANDIDATES_BY_FAMILY = candidates.by_family(candidates.profile(PROFILE))
# Candidate pods at once (the DAG's max_active_tasks): two fit the documented kind cluster
# (4 CPUs, 8 GiB, two workers; docs/KUBERNETES.md, tests/charts/test_sizing.py) beside the
# platform and a retraining Job; raise it on a larger cluster.
MAX_PODS = int(os.environ.get("FOREST_TRAINING_MAX_PODS", "2"))

# "base" is the worker container of the KubernetesExecutor's pod template. Requests are what
# the scheduler reserves; the limits let a fit use more when the node has it free.
CANDIDATE_LABEL = "forest-mlops/training"


def _pod(requests: dict[str, str], limits: dict[str, str], *, spread: bool) -> dict[str, Any]:
    # Candidate pods carry a label and prefer nodes with fewer of them (soft: a full node
    # must not leave a candidate Pending into the executor's pending timeout); the control
    # plane's taint keeps it out of the count (nodeTaintsPolicy Honor).
    spreading = (
        [
            k8s.V1TopologySpreadConstraint(
                max_skew=1,
                topology_key="kubernetes.io/hostname",
                when_unsatisfiable="ScheduleAnyway",
                label_selector=k8s.V1LabelSelector(match_labels={CANDIDATE_LABEL: "candidate"}),
                node_taints_policy="Honor",
            )
        ]
        if spread
        else None
    )
    return {
        "pod_override": k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(labels={CANDIDATE_LABEL: "candidate"}) if spread else None,
            spec=k8s.V1PodSpec(
                containers=[
                    k8s.V1Container(
                        name="base",
                        resources=k8s.V1ResourceRequirements(requests=requests, limits=limits),
                    )
                ],
                topology_spread_constraints=spreading,
            ),
        )
    }


# Per family, from the fits measured on the 75k dev sample (bench/training.py; one process
# peaks near 0.6 GB, the task runner adds its own): the forests fit with two joblib workers,
# HistGradientBoosting on one OpenMP thread (training.threads), so one core is its ceiling.
# 375m each, not 450m: two of them then ask no more than the evaluate step (750m), which gave the
# inference service the 150m of its 200m request on the documented kind cluster (its CPU share
# beside training: values-kind.yaml); a fit still uses whatever the node has free.
CANDIDATE_PODS = {
    candidates.EXTRA_TREES: _pod(
        {"cpu": "375m", "memory": "1Gi"}, {"cpu": "2", "memory": "3Gi"}, spread=True
    ),
    candidates.RANDOM_FOREST: _pod(
        {"cpu": "375m", "memory": "1Gi"}, {"cpu": "2", "memory": "3Gi"}, spread=True
    ),
    candidates.HIST_GRADIENT_BOOSTING: _pod(
        {"cpu": "375m", "memory": "768Mi"}, {"cpu": "1", "memory": "2Gi"}, spread=True
    ),
}
# The evaluate step refits the winner on 85 % of the rows: sized like the retraining Job,
# which runs the whole search in one pod (k8s/, tests/platform/test_k8s_manifests.py).
TRAINING_POD = _pod(
    {"cpu": "750m", "memory": "1536Mi"}, {"cpu": "2", "memory": "6Gi"}, spread=False
)


def _settings() -> Any:
    from forest_mlops.training.settings import TrainingSettings

    # The profile the mapped tasks were expanded from, whatever a worker's environment says.
    return TrainingSettings(profile=PROFILE)


def _context(run: dict[str, Any]) -> Any:
    from forest_mlops.training.workflow import RunContext

    return RunContext.from_dict(run)


def _mark_parent_failed(context: Any) -> None:
    """After a task's last retry fails, close the parent MLflow run as FAILED."""
    from forest_mlops.training import workflow

    run = context["ti"].xcom_pull(task_ids="prepare")
    if run:
        workflow.fail_run(_settings(), _context(run))


def _candidate_failed(context: Any) -> None:
    """A candidate that failed after its retries fails alone: the parent run stays open for the
    others (the failure is on the parent run as its placement tag, and in the task's log)."""
    ti = context["ti"]
    log.warning("candidate %s failed for good; the others still compete", ti.map_index)


@dag(
    dag_id="forest_cover_model_training",
    schedule=[FOREST_COVER_DATA],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    # One training at a time: two runs would race for the champion alias.
    max_active_runs=1,
    max_active_tasks=MAX_PODS,
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

    @task(
        execution_timeout=dt.timedelta(minutes=30),
        retries=2,
        on_failure_callback=_candidate_failed,
    )
    def train_candidate(run: dict[str, Any], candidate: str) -> dict[str, Any]:
        from forest_mlops.training import workflow

        spec = candidates.by_name(candidate, candidates.profile(PROFILE))
        return workflow.train_candidate(_settings(), _context(run), spec)

    @task(
        executor_config=TRAINING_POD,
        execution_timeout=dt.timedelta(minutes=30),
        # Every candidate has finished, failed or not, and at least one task upstream
        # succeeded; when every candidate failed, the step itself fails saying so.
        trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS,
    )
    def evaluate_candidates(run: dict[str, Any]) -> dict[str, Any]:
        from forest_mlops.training import workflow

        return workflow.evaluate_candidates(_settings(), _context(run))

    @task
    def register_and_promote(run: dict[str, Any], winner: dict[str, Any]) -> dict[str, Any]:
        from forest_mlops.training import workflow

        decision = workflow.register_and_promote(_settings(), _context(run), winner)
        log.info("%s", decision.summary())
        return dict(decision.to_dict())

    run = prepare()
    trained = [
        train_candidate.override(task_id=f"train_{family}", executor_config=CANDIDATE_PODS[family])
        .partial(run=run)
        .expand(candidate=names)
        for family, names in CANDIDATES_BY_FAMILY.items()
    ]
    # At parse time a TaskFlow call returns an XComArg, which Airflow resolves to the value the
    # task is typed with when the downstream task runs; the stubs only know the former.
    evaluated = evaluate_candidates(run)  # type: ignore[arg-type]
    trained >> evaluated
    register_and_promote(run, evaluated)  # type: ignore[arg-type]


forest_cover_model_training()
