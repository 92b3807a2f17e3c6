"""The demo, step by step: data → data API → Airflow (collect, train) → MLflow → inference.

`run_demo` owns every child process through one `ProcessGroup`: whatever happens (an error,
Ctrl-C, SIGTERM turned into SystemExit by the CLI), leaving it stops them all.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from forest_mlops import database
from forest_mlops.dataset import load_dataset
from forest_mlops.demo import airflow_runner, mlflow_store, predictions
from forest_mlops.demo.config import DemoConfig
from forest_mlops.demo.console import Console
from forest_mlops.demo.dataset_source import DatasetChoice, choose_dataset
from forest_mlops.demo.progress import N_BATCHES, DagProgress
from forest_mlops.demo.report import PhaseTimer, Summary, render
from forest_mlops.demo.workdir import WorkDir
from forest_mlops.process import (
    ManagedProcess,
    ProcessGroup,
    forest_mlops_argv,
    pick_port,
)

log = logging.getLogger(__name__)

API_DATA_PORT = 8000
INFERENCE_PORT = 8001
EXAMPLE_PREDICTIONS = 5
BATCH_PREDICTION_ROWS = 1000
# The inference service checks the registry this often on its own; the demo also asks it to
# reload as soon as training has finished.
INFERENCE_POLL_SECONDS = 15
SERVICE_START_TIMEOUT = 180.0
MODEL_LOAD_TIMEOUT = 180.0


def _waiting(console: Console, what: str) -> Callable[[float], None]:
    return lambda seconds: console.status(f"{what}... {seconds:.0f} s", key=what)


def _first_sentence(text: str | None) -> str:
    return (text or "unknown reason").split(". ")[0].rstrip(".") + "."


def _describe_dataset(choice: DatasetChoice, console: Console) -> None:
    console.info(f"dataset: {choice.describe()}")
    if choice.origin == "synthetic":
        console.warn(
            "NO REAL DATA: the UCI Covertype data is not cached and could not be downloaded:\n"
            f"{_first_sentence(choice.fallback_reason)}\n"
            "Serving SYNTHETIC rows from forest_mlops.synthetic instead; the MLflow runs are\n"
            "tagged data.synthetic=true. For real data pass --dataset PATH (a course-layout\n"
            "CSV), or run the demo (or `forest-mlops data download`) with network access."
        )
    elif choice.synthetic:
        console.warn(f"{choice.path} is SYNTHETIC data (it has a .synthetic.json sidecar).")


@dataclass(frozen=True)
class Plan:
    """Where everything goes: resolved once from the config before anything starts."""

    config: DemoConfig
    workdir: WorkDir
    dags_folder: Path
    tracking_uri: str
    database_url: str
    api_url: str
    api_port: int
    inference_url: str
    inference_port: int

    @classmethod
    def resolve(cls, config: DemoConfig) -> Plan:
        workdir = WorkDir.create(config.workdir)
        api_port = config.api_port or pick_port(config.host, API_DATA_PORT)
        inference_port = config.inference_port or pick_port(config.host, INFERENCE_PORT)
        return cls(
            config=config,
            workdir=workdir,
            dags_folder=airflow_runner.find_dags_folder(config.dags_folder),
            tracking_uri=config.tracking_uri or workdir.mlflow_tracking_uri,
            database_url=config.database_url or workdir.train_database_url,
            api_url=f"http://{config.host}:{api_port}",
            api_port=api_port,
            inference_url=f"http://{config.host}:{inference_port}",
            inference_port=inference_port,
        )

    def airflow_env(self) -> dict[str, str]:
        config = self.config
        return airflow_runner.airflow_env(
            self.workdir,
            self.dags_folder,
            airflow_runner.DagEnvironment(
                api_url=self.api_url,
                database_url=self.database_url,
                tracking_uri=self.tracking_uri,
                group=config.group,
                requests_per_window=config.requests_per_window,
                interval_seconds=config.min_update_time,
                profile=config.profile,
                model_name=config.model_name,
                experiment_name=config.experiment_name,
            ),
        )


def run_demo(config: DemoConfig, console: Console) -> int:
    plan = Plan.resolve(config)
    timer = PhaseTimer()
    summary = Summary(workdir=str(plan.workdir.root))
    plan.workdir.summary_json.unlink(missing_ok=True)
    console.step(f"forest-mlops demo in {plan.workdir.root}")
    with ProcessGroup() as processes:
        try:
            return _run(plan, console, processes, timer, summary)
        except BaseException as exc:
            summary.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            summary.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            summary.timings = dict(timer.seconds)
            summary.total_seconds = timer.total()
            summary.write(plan.workdir.summary_json)
            raise
        finally:
            if processes.has_running():
                console.step("Stopping the demo's processes")


def _run(
    plan: Plan, console: Console, processes: ProcessGroup, timer: PhaseTimer, summary: Summary
) -> int:
    config, workdir = plan.config, plan.workdir
    # The slow, independent starts overlap: Airflow's metadata migration and the Airflow
    # child's imports and warm-up run while the data is found and the services start.
    env = plan.airflow_env()
    migration = airflow_runner.start_migration(processes, workdir, env)
    if migration is not None:
        console.info("preparing Airflow's SQLite metadata in the background (first run only)")
    child = airflow_runner.AirflowChild(
        processes,
        workdir,
        env,
        group=config.group,
        batches=N_BATCHES,
        window_seconds=config.min_update_time,
    )
    progress = DagProgress(console, timer, summary, config.group)

    with timer.phase("dataset"):
        console.step("Dataset")
        choice = choose_dataset(workdir, config.dataset)
        _describe_dataset(choice, console)
        data = load_dataset(choice.path)
        summary.dataset = {
            "path": str(choice.path),
            "origin": choice.origin,
            "synthetic": choice.synthetic,
            "rows": len(data),
            "description": choice.describe(),
        }
        console.info(f"{len(data):,} rows validated")

    with timer.phase("services"):
        console.step(f"Starting the data API (MIN_UPDATE_TIME={config.min_update_time:g} s)")
        api_argv = forest_mlops_argv(
            "api-data",
            "--dataset", str(choice.path),
            "--min-update-time", f"{config.min_update_time:g}",
            "--state", str(workdir.api_data_state),
            "--host", config.host,
            "--port", str(plan.api_port),
            "--batches", str(N_BATCHES),
        )  # fmt: skip
        api = processes.start(
            "data API", api_argv, log_path=workdir.log("api-data"), cwd=workdir.root
        )
        engine = database.create_engine(plan.database_url)
        database.apply_schema(engine)
        engine.dispose()
        console.info(f"training database ready: {_redact(plan.database_url)}")
        mlflow_store.ensure_experiment(
            plan.tracking_uri,
            config.experiment_name,
            workdir.mlflow_artifacts.as_uri() if config.tracking_uri is None else None,
        )
        console.info(f"MLflow store ready: {plan.tracking_uri}")
        inference = _start_inference(plan, processes)
        api.wait_http(
            f"{plan.api_url}/ready",
            timeout=SERVICE_START_TIMEOUT,
            on_wait=_waiting(console, "waiting for the data API"),
        )
        console.info(f"data API ready at {plan.api_url} (log: {api.log_path})")
        airflow_runner.finish_migration(
            migration, workdir, on_wait=_waiting(console, "waiting for airflow db migrate")
        )

    console.step("Airflow: dag.test() with SQLite metadata in the work directory")
    child.release(airflow_runner.dataset_env(choice.synthetic))

    def on_wait() -> None:
        processes.check_services()
        progress.on_wait()

    child.follow(progress.on_event, on_wait)

    with timer.phase("results"):
        result = mlflow_store.read_training_result(
            plan.tracking_uri, config.experiment_name, config.model_name
        )
        summary.set_training(result)

    with timer.phase("inference"):
        console.step("Serving the champion (inference service)")
        _wait_for_model(inference, plan.inference_url, console)
        rows = predictions.sample_rows(data, EXAMPLE_PREDICTIONS + BATCH_PREDICTION_ROWS)
        examples = predictions.predict_examples(plan.inference_url, rows[:EXAMPLE_PREDICTIONS])
        batch = predictions.predict_batch(plan.inference_url, rows[EXAMPLE_PREDICTIONS:])
        summary.set_predictions(examples, batch)

    summary.services = {
        "api_data_url": plan.api_url,
        "inference_url": plan.inference_url,
        "tracking_uri": plan.tracking_uri,
        "database_url": _redact(plan.database_url),
        "serving": config.serve,
    }
    summary.next_steps = _next_steps(plan)
    summary.timings = dict(timer.seconds)
    summary.total_seconds = timer.total()
    summary.status = "serving" if config.serve else "done"
    summary.write(workdir.summary_json)
    console.lines(render(summary))
    if config.serve:
        _serve(processes, console, plan)
        summary.status = "done"
        summary.write(workdir.summary_json)
    return 0


def _start_inference(plan: Plan, processes: ProcessGroup) -> ManagedProcess:
    """Started early: it comes up without a model (not ready) while the DAGs run."""
    config = plan.config
    argv = forest_mlops_argv(
        "inference",
        "--port", str(plan.inference_port),
        "--tracking-uri", plan.tracking_uri,
        "--model-name", config.model_name,
        "--model-alias", mlflow_store.CHAMPION_ALIAS,
    )  # fmt: skip
    return processes.start(
        "inference service",
        argv,
        log_path=plan.workdir.log("inference"),
        env={
            "INFERENCE_HOST": config.host,
            "INFERENCE_POLL_INTERVAL": str(INFERENCE_POLL_SECONDS),
            "MLFLOW_TRACKING_URI": plan.tracking_uri,
            "MLFLOW_REGISTRY_URI": plan.tracking_uri,  # as the DAGs' (airflow_runner)
        },
        cwd=plan.workdir.root,
    )


def _model_ready(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    body = response.json()
    return not (isinstance(body, dict) and body.get("ready") is False)


def _wait_for_model(inference: ManagedProcess, inference_url: str, console: Console) -> None:
    inference.wait_http(
        f"{inference_url}/health",
        timeout=SERVICE_START_TIMEOUT,
        on_wait=_waiting(console, "waiting for the inference service"),
    )
    # Ask for the new champion now rather than at the next poll.
    httpx.post(f"{inference_url}/reload", timeout=60.0)
    inference.wait_http(
        f"{inference_url}/ready",
        timeout=MODEL_LOAD_TIMEOUT,
        ready=_model_ready,
        on_wait=_waiting(console, "loading the champion"),
    )
    model = httpx.get(f"{inference_url}/model", timeout=10.0).json()["model"]
    console.info(
        f"serving {model['name']}@{model['alias']}: version {model['version']} "
        f"(run {model['run_id']}) at {inference_url}"
    )


def _next_steps(plan: Plan) -> list[str]:
    workdir = plan.workdir
    steps = []
    if plan.config.serve:
        steps.append(f"inference page:  {plan.inference_url}/  (Ctrl-C stops the services)")
    else:
        steps.append(
            f"inference page:  add --serve to keep the services up, then open "
            f"{plan.inference_url}/ (a rerun in this work directory reuses the collected data)"
        )
    ui = f"mlflow ui --backend-store-uri {shlex.quote(plan.tracking_uri)}"
    if plan.config.tracking_uri is None:
        steps.append(f"MLflow UI:       {ui} --port 5000   (then open http://127.0.0.1:5000)")
    else:
        steps.append(f"MLflow:          {plan.tracking_uri}")
    steps.append(f"summary (JSON):  {workdir.summary_json}")
    steps.append(f"logs:            {workdir.logs_dir}/")
    steps.append(f"start over:      rm -rf {shlex.quote(str(workdir.root))}")
    return steps


def _serve(processes: ProcessGroup, console: Console, plan: Plan) -> None:
    console.step(
        f"Serving: inference {plan.inference_url}/ , data API {plan.api_url}/ (Ctrl-C to stop)"
    )
    try:
        while True:
            processes.check_services()
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.info("stopping (Ctrl-C)")


def _redact(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)
