"""The demo, step by step: data → data API → Airflow (collect, train) → MLflow → inference.

`run_demo` owns every child process through one `ProcessGroup`: whatever happens (an error,
Ctrl-C, SIGTERM turned into SystemExit by the CLI), leaving it stops them all.
"""

from __future__ import annotations

import logging
import shlex
import time
from typing import Any

import httpx

from forest_mlops import database
from forest_mlops.dataset import load_dataset
from forest_mlops.demo import airflow_runner, mlflow_store, predictions
from forest_mlops.demo.collection import BatchCount, CollectionState
from forest_mlops.demo.config import DemoConfig
from forest_mlops.demo.console import Console
from forest_mlops.demo.dataset_source import DatasetChoice, choose_dataset
from forest_mlops.demo.report import PhaseTimer, Summary, render
from forest_mlops.demo.services import (
    ManagedProcess,
    ProcessGroup,
    forest_mlops_argv,
    pick_port,
)
from forest_mlops.demo.workdir import WorkDir

log = logging.getLogger(__name__)

N_BATCHES = 10
API_DATA_PORT = 8000
INFERENCE_PORT = 8001
EXAMPLE_PREDICTIONS = 5
BATCH_PREDICTION_ROWS = 1000
# The inference service checks the registry this often on its own; the demo also asks it to
# reload as soon as training has finished.
INFERENCE_POLL_SECONDS = 15
SERVICE_START_TIMEOUT = 180.0
MODEL_LOAD_TIMEOUT = 180.0


def _collection_from_event(event: dict[str, Any], group: int) -> CollectionState:
    return CollectionState(
        group=group,
        batches=[BatchCount(**batch) for batch in event["batches"]],
        complete=bool(event["complete"]),
        failed_attempts=int(event.get("failed_attempts", 0)),
    )


class DagProgress:
    """Turns the Airflow child's events into progress lines and phase timings."""

    def __init__(self, console: Console, timer: PhaseTimer, summary: Summary, group: int) -> None:
        self.console = console
        self.timer = timer
        self.summary = summary
        self.group = group
        self.phase = "starting Airflow"
        self.phase_started = time.monotonic()
        self.batches_seen: set[int] = set()
        self.stored_rows = 0
        self.collection: CollectionState | None = None

    def _begin(self, phase: str) -> None:
        self.phase = phase
        self.phase_started = time.monotonic()

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "airflow_ready":
            self.timer.seconds["airflow_start"] = float(event["seconds"])
            self.console.info(f"Airflow parsed the DAGs in {event['seconds']:.1f} s")
            self.console.step(
                f"Collecting group {self.group}: forest_cover_data_extraction, one run per "
                "batch window"
            )
            self._begin("collecting")
        elif kind == "extraction_run" and event["state"] != "success":
            self.console.info(f"extraction run {event['run']}: {event['state']} {event['tasks']}")
        elif kind == "collection":
            state = _collection_from_event(event, self.group)
            self.collection = state
            self.stored_rows = state.stored_rows
            for batch in state.batches:
                if batch.batch not in self.batches_seen:
                    self.batches_seen.add(batch.batch)
                    self.console.info(
                        f"batch {batch.batch + 1:>2}/{N_BATCHES}: {batch.stored:>7,} rows stored "
                        f"({batch.requests} requests, {batch.received:,} rows received; "
                        f"run {event['run']}, {self.console.elapsed():.0f} s)"
                    )
        elif kind == "collection_done":
            state = _collection_from_event(event, self.group)
            self.collection = state
            self.summary.set_collection(state, runs=int(event["runs"]), already=event["already"])
            self.timer.seconds["collect"] = round(time.monotonic() - self.phase_started, 2)
            if event["already"]:
                self.console.info(
                    f"group {self.group} was collected by an earlier run in this work directory "
                    f"({state.stored_rows:,} rows): not collecting again"
                )
            else:
                self.console.info(
                    f"all {N_BATCHES} batches in: {state.stored_rows:,} rows stored from "
                    f"{state.received_rows:,} received in {event['runs']} DAG runs"
                )
        elif kind == "training_start":
            self.console.step(
                "Training: forest_cover_model_training (candidates, MLflow, registry)"
            )
            self._begin("training")
        elif kind == "training_run":
            self.timer.seconds["train"] = float(event["seconds"])
            self.console.info(f"training DAG run {event['state']} in {event['seconds']:.1f} s")
        elif kind == "error":
            self.console.info(f"Airflow run error: {event['message']}")

    def on_wait(self) -> None:
        waited = time.monotonic() - self.phase_started
        if self.phase == "collecting":
            self.console.status(
                f"collecting: {len(self.batches_seen)}/{N_BATCHES} batches, "
                f"{self.stored_rows:,} rows stored ({waited:.0f} s)"
            )
        else:
            self.console.status(f"{self.phase}... {waited:.0f} s")


def _describe_dataset(choice: DatasetChoice, console: Console) -> None:
    console.info(f"dataset: {choice.describe()}")
    if choice.origin == "synthetic":
        console.warn(
            "NO REAL DATA: the UCI Covertype data is not cached and could not be downloaded\n"
            f"({choice.fallback_reason}).\n"
            "Serving SYNTHETIC rows from forest_mlops.synthetic instead; the MLflow runs are\n"
            "tagged synthetic. Pass --dataset PATH (a course-layout CSV) or run\n"
            "`forest-mlops data download` with network access to use real data."
        )
    elif choice.synthetic:
        console.warn(f"{choice.path} is SYNTHETIC data (it has a .synthetic.json sidecar).")


def run_demo(config: DemoConfig, console: Console) -> int:
    workdir = WorkDir.create(config.workdir)
    timer = PhaseTimer()
    summary = Summary(workdir=str(workdir.root))
    workdir.summary_json.unlink(missing_ok=True)
    console.step(f"forest-mlops demo in {workdir.root}")
    tracking_uri = config.tracking_uri or workdir.mlflow_tracking_uri
    database_url = config.database_url or workdir.train_database_url
    dags_folder = airflow_runner.find_dags_folder(config.dags_folder)
    api_port = config.api_port or pick_port(config.host, API_DATA_PORT)
    inference_port = config.inference_port or pick_port(config.host, INFERENCE_PORT)
    api_url = f"http://{config.host}:{api_port}"
    inference_url = f"http://{config.host}:{inference_port}"
    env = airflow_runner.airflow_env(
        workdir,
        dags_folder,
        airflow_runner.DagEnvironment(
            api_url=api_url,
            database_url=database_url,
            tracking_uri=tracking_uri,
            group=config.group,
            requests_per_window=config.requests_per_window,
            interval_seconds=config.min_update_time,
            profile=config.profile,
            model_name=config.model_name,
            experiment_name=config.experiment_name,
        ),
    )

    with ProcessGroup() as processes:
        try:
            code = _run(
                config, console, workdir, processes, timer, summary, env,
                api_url=api_url, inference_url=inference_url,
                tracking_uri=tracking_uri, database_url=database_url,
            )  # fmt: skip
        except BaseException as exc:
            summary.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            summary.timings = dict(timer.seconds)
            summary.total_seconds = timer.total()
            summary.write(workdir.summary_json)
            raise
        finally:
            if processes.has_running():
                console.step("Stopping the demo's processes")
    return code


def _run(
    config: DemoConfig,
    console: Console,
    workdir: WorkDir,
    processes: ProcessGroup,
    timer: PhaseTimer,
    summary: Summary,
    env: dict[str, str],
    *,
    api_url: str,
    inference_url: str,
    tracking_uri: str,
    database_url: str,
) -> int:
    # Airflow's metadata migration is slow and independent: it runs while the data is found
    # and the data API starts.
    migration = airflow_runner.start_migration(processes, workdir, env)
    if migration is not None:
        console.info("preparing Airflow's SQLite metadata in the background (first run only)")

    with timer.phase("dataset"):
        console.step("Dataset")
        choice = choose_dataset(workdir, config.dataset)
        _describe_dataset(choice, console)
        data = load_dataset(choice.path)
        summary.dataset = {
            "path": str(choice.path),
            "origin": choice.origin,
            "synthetic": choice.synthetic or data.synthetic,
            "rows": len(data),
            "description": choice.describe(),
        }
        console.info(f"{len(data):,} rows validated")

    with timer.phase("services"):
        console.step(f"Starting the data API (MIN_UPDATE_TIME={config.min_update_time:g} s)")
        api_port = api_url.rsplit(":", 1)[1]
        api_argv = forest_mlops_argv(
            "api-data",
            "--dataset", str(choice.path),
            "--min-update-time", f"{config.min_update_time:g}",
            "--state", str(workdir.api_data_state),
            "--host", config.host,
            "--port", api_port,
            "--batches", str(N_BATCHES),
        )  # fmt: skip
        api = processes.start(
            "data API",
            api_argv,
            log_path=workdir.log("api-data"),
            cwd=workdir.root,
        )
        engine = database.create_engine(database_url)
        database.apply_schema(engine)
        engine.dispose()
        console.info(f"training database ready: {_redact(database_url)}")
        local_store = config.tracking_uri is None
        mlflow_store.ensure_experiment(
            tracking_uri,
            config.experiment_name,
            workdir.mlflow_artifacts.as_uri() if local_store else None,
        )
        console.info(f"MLflow store ready: {tracking_uri}")
        inference = _start_inference(config, workdir, processes, tracking_uri, inference_url)
        api.wait_http(
            f"{api_url}/ready",
            timeout=SERVICE_START_TIMEOUT,
            on_wait=lambda s: console.status(f"waiting for the data API... {s:.0f} s"),
        )
        console.info(f"data API ready at {api_url} (log: {api.log_path})")
        airflow_runner.finish_migration(
            migration,
            workdir,
            on_wait=lambda s: console.status(f"waiting for airflow db migrate... {s:.0f} s"),
        )

    console.step("Starting Airflow (dag.test(), SQLite metadata in the work directory)")
    progress = DagProgress(console, timer, summary, config.group)

    def on_wait() -> None:
        processes.check_services()
        progress.on_wait()

    airflow_runner.run_dags(
        processes,
        workdir,
        env,
        group=config.group,
        batches=N_BATCHES,
        window_seconds=config.min_update_time,
        on_event=progress.on_event,
        on_wait=on_wait,
    )

    with timer.phase("results"):
        result = mlflow_store.read_training_result(
            tracking_uri, config.experiment_name, config.model_name
        )
        summary.set_training(result)

    with timer.phase("inference"):
        console.step("Serving the champion (inference service)")
        _wait_for_model(inference, inference_url, console)
        rows = predictions.sample_rows(data, EXAMPLE_PREDICTIONS + BATCH_PREDICTION_ROWS)
        examples = predictions.predict_examples(inference_url, rows[:EXAMPLE_PREDICTIONS])
        batch = predictions.predict_batch(inference_url, rows[EXAMPLE_PREDICTIONS:])
        summary.set_predictions(examples, batch)

    summary.services = {
        "api_data_url": api_url,
        "inference_url": inference_url,
        "tracking_uri": tracking_uri,
        "database_url": _redact(database_url),
        "serving": config.serve,
    }
    summary.next_steps = _next_steps(config, workdir, tracking_uri, inference_url)
    summary.timings = dict(timer.seconds)
    summary.total_seconds = timer.total()
    summary.status = "serving" if config.serve else "done"
    summary.write(workdir.summary_json)
    console.lines(render(summary))
    if config.serve:
        _serve(processes, console, inference_url, api_url)
        summary.status = "done"
        summary.write(workdir.summary_json)
    return 0


def _start_inference(
    config: DemoConfig,
    workdir: WorkDir,
    processes: ProcessGroup,
    tracking_uri: str,
    inference_url: str,
) -> ManagedProcess:
    """Started early: it comes up without a model (not ready) while the DAGs run."""
    port = inference_url.rsplit(":", 1)[1]
    argv = forest_mlops_argv(
        "inference",
        "--port", port,
        "--tracking-uri", tracking_uri,
        "--model-name", config.model_name,
        "--model-alias", mlflow_store.CHAMPION_ALIAS,
    )  # fmt: skip
    return processes.start(
        "inference service",
        argv,
        log_path=workdir.log("inference"),
        env={
            "INFERENCE_HOST": config.host,
            "INFERENCE_POLL_INTERVAL": str(INFERENCE_POLL_SECONDS),
            "MLFLOW_TRACKING_URI": tracking_uri,
        },
        cwd=workdir.root,
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
        on_wait=lambda s: console.status(f"waiting for the inference service... {s:.0f} s"),
    )
    # Ask for the new champion now rather than at the next poll.
    httpx.post(f"{inference_url}/reload", timeout=60.0)
    inference.wait_http(
        f"{inference_url}/ready",
        timeout=MODEL_LOAD_TIMEOUT,
        ready=_model_ready,
        on_wait=lambda s: console.status(f"loading the champion... {s:.0f} s"),
    )
    model = httpx.get(f"{inference_url}/model", timeout=10.0).json()
    console.info(f"serving {model}")


def _next_steps(
    config: DemoConfig, workdir: WorkDir, tracking_uri: str, inference_url: str
) -> list[str]:
    steps = []
    if config.serve:
        steps.append(f"inference page:  {inference_url}/  (Ctrl-C stops the services)")
    else:
        steps.append(
            f"inference page:  add --serve to keep the services up, then open {inference_url}/"
            " (a rerun in this work directory reuses the collected data)"
        )
    steps.append(
        f"MLflow UI:       mlflow ui --backend-store-uri {shlex.quote(tracking_uri)}"
        + (" --port 5000" if config.tracking_uri is None else "")
    )
    steps.append(f"summary (JSON):  {workdir.summary_json}")
    steps.append(f"logs:            {workdir.logs_dir}/")
    steps.append(f"start over:      rm -rf {shlex.quote(str(workdir.root))}")
    return steps


def _serve(processes: ProcessGroup, console: Console, inference_url: str, api_url: str) -> None:
    console.step(f"Serving: inference {inference_url}/ , data API {api_url}/ (Ctrl-C to stop)")
    try:
        while True:
            processes.check_services()
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.info("stopping (Ctrl-C)")


def _redact(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)
