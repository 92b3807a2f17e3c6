"""The demo's side of the Airflow run: environment, metadata migration, the child process.

Airflow reads AIRFLOW_HOME and its AIRFLOW__* settings when it is first imported, so the DAG
runs happen in a child process (`airflow_child`) whose environment points Airflow at SQLite
metadata in the work directory and the DAGs at the demo's data API, database and MLflow.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forest_mlops.demo.events import EventReader
from forest_mlops.demo.workdir import WorkDir
from forest_mlops.process import ManagedProcess, ProcessGroup, ServiceError

EXTRACTION_DAG_FILE = "forest_cover_data_extraction.py"
# Slack added to the batch window between extraction runs, so that a run's first request is
# surely past the window the previous run's first request opened.
WINDOW_MARGIN_SECONDS = 0.75


# The user's own Airflow settings (a cluster's executor, another metadata database) must not
# reach the demo's Airflow: it gets only the variables airflow_env() sets.
AIRFLOW_ENV_PREFIXES = ("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONFIG")


class AirflowRunError(RuntimeError):
    pass


def find_dags_folder(explicit: Path | None = None) -> Path:
    """The project's dags/: given, else found above this file (a checkout) or the cwd."""
    if explicit is not None:
        candidates = [explicit]
    else:
        here = Path(__file__).resolve()
        candidates = [base / "dags" for base in (*here.parents, Path.cwd())]
    for candidate in candidates:
        if (candidate / EXTRACTION_DAG_FILE).is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise AirflowRunError(
        f"no dags/{EXTRACTION_DAG_FILE} found (searched {searched}): run the demo from a "
        "checkout of forest-mlops"
    )


@dataclass(frozen=True)
class DagEnvironment:
    """What the DAGs need to reach the demo's services (the variables of ARCHITECTURE.md)."""

    api_url: str
    database_url: str
    tracking_uri: str
    group: int
    requests_per_window: int | None  # None: the stop rule
    interval_seconds: float
    profile: str
    model_name: str
    experiment_name: str


def airflow_env(workdir: WorkDir, dags_folder: Path, dag_env: DagEnvironment) -> dict[str, str]:
    home = workdir.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{workdir.airflow_db}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "FOREST_API_URL": dag_env.api_url,
        "FOREST_DATABASE_URL": dag_env.database_url,
        "MLFLOW_TRACKING_URI": dag_env.tracking_uri,
        # MLflow prefers a registry URI from the environment to the tracking one: one exported
        # in the user's shell must not send the demo's registrations elsewhere.
        "MLFLOW_REGISTRY_URI": dag_env.tracking_uri,
        "FOREST_GROUP_NUMBER": str(dag_env.group),
        "FOREST_INGEST_INTERVAL_SECONDS": f"{dag_env.interval_seconds:g}",
        "FOREST_TRAINING_PROFILE": dag_env.profile,
        "FOREST_MODEL_NAME": dag_env.model_name,
        "FOREST_EXPERIMENT_NAME": dag_env.experiment_name,
        **_training_threads(dag_env.profile),
        **(
            {}
            if dag_env.requests_per_window is None
            else {"FOREST_REQUESTS_PER_WINDOW": str(dag_env.requests_per_window)}
        ),
    }


def _training_threads(profile: str) -> dict[str, str]:
    """One thread per fit for the quick profile.

    Its models fit in about a second on one thread, while HistGradientBoosting's OpenMP
    threads can take minutes when the machine is busy with anything else (see
    forest_mlops.training.threads); the demo's machine is a laptop, not a dedicated pod.
    """
    return {"FOREST_TRAINING_JOBS": "1"} if profile == "quick" else {}


def dataset_env(synthetic: bool) -> dict[str, str]:
    """What the DAGs must know about the data: generated rows get data.synthetic=true."""
    return {"FOREST_DATA_SYNTHETIC": "true" if synthetic else "false"}


def start_migration(
    processes: ProcessGroup, workdir: WorkDir, env: Mapping[str, str]
) -> ManagedProcess | None:
    """`airflow db migrate` in the background, the first time only; None when already done."""
    if workdir.airflow_migrated_marker.exists() and workdir.airflow_db.exists():
        return None
    return processes.start(
        "airflow db migrate",
        [sys.executable, "-m", "airflow", "db", "migrate"],
        log_path=workdir.log("airflow-migrate"),
        env=env,
        cwd=workdir.root,
        service=False,
        scrub_prefixes=AIRFLOW_ENV_PREFIXES,
    )


def finish_migration(
    migration: ManagedProcess | None,
    workdir: WorkDir,
    on_wait: Callable[[float], None],
    timeout: float = 300.0,
) -> None:
    if migration is None:
        return
    started = time.monotonic()
    while migration.running():
        waited = time.monotonic() - started
        if waited > timeout:
            raise migration.failure(f"did not finish within {timeout:.0f} s")
        on_wait(waited)
        time.sleep(0.25)
    if migration.proc.returncode != 0:
        raise migration.failure(f"failed with code {migration.proc.returncode}")
    workdir.airflow_migrated_marker.write_text("airflow db migrate done\n")


class AirflowChild:
    """The child process that runs the DAGs (`airflow_child`).

    Started early: it imports Airflow, parses the DAGs and warms Airflow's in-process
    execution API while the metadata is migrated and the services start, then waits until
    `release()` says everything it talks to is up.
    """

    def __init__(
        self,
        processes: ProcessGroup,
        workdir: WorkDir,
        env: Mapping[str, str],
        *,
        group: int,
        batches: int,
        window_seconds: float,
        skip_extraction: bool = False,
        skip_training: bool = False,
    ) -> None:
        self.events_path = workdir.airflow_events
        self.go_path = workdir.airflow_home / "go"
        self.events_path.unlink(missing_ok=True)
        self.go_path.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "forest_mlops.demo.airflow_child",
            "--events", str(self.events_path),
            "--go-file", str(self.go_path),
            "--group", str(group),
            "--batches", str(batches),
            "--interval", f"{window_seconds + WINDOW_MARGIN_SECONDS:g}",
        ]  # fmt: skip
        if skip_extraction:
            argv.append("--skip-extraction")
        if skip_training:
            argv.append("--skip-training")
        self.process = processes.start(
            "airflow (dag.test)",
            argv,
            log_path=workdir.log("airflow"),
            env=env,
            # MLflow puts the artifacts of an experiment it creates itself in ./mlruns.
            cwd=workdir.mlflow_dir,
            service=False,
            scrub_prefixes=AIRFLOW_ENV_PREFIXES,
            # dag.test() does not stop on SIGTERM; nothing it holds is worth waiting for
            # (the training data is written in transactions, a cut run is redone next time).
            stop_grace=3.0,
        )
        self._reader = EventReader(self.events_path)
        self.events: list[dict[str, Any]] = []

    def release(self, late_env: Mapping[str, str] | None = None) -> None:
        """The metadata is migrated and the services are up: start the DAG runs.

        `late_env` is added to the child's environment first: settings that were not known
        when it started (written atomically, the child reads the file once it exists).
        """
        tmp = self.go_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(late_env or {})), encoding="utf-8")
        tmp.replace(self.go_path)

    def poll(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        for event in self._reader.new_events():
            self.events.append(event)
            on_event(event)

    def follow(
        self,
        on_event: Callable[[dict[str, Any]], None],
        on_wait: Callable[[], None],
    ) -> list[dict[str, Any]]:
        """Pass each event on until the child reports the end of its work; fail with its error.

        The child's "finished" event ends the wait: Airflow's exit handlers then take several
        seconds that nothing depends on, so the child finishes exiting in the background.
        `on_wait` is called about 4 times a second between events, to redraw progress and to
        check that the services the DAGs talk to are still up.
        """
        while self.process.running() and not self._finished():
            self.poll(on_event)
            on_wait()
            time.sleep(0.25)
        self.poll(on_event)
        if self._finished():
            return self.events
        errors = [e["message"] for e in self.events if e.get("event") == "error"]
        code = self.process.proc.returncode
        reason = errors[-1] if errors else f"exited with code {code} before finishing"
        raise ServiceError(
            f"the Airflow run failed: {reason}\n(log: {self.process.log_path})\n"
            f"{self.process.log_tail(3000)}"
        )

    def _finished(self) -> bool:
        return any(event.get("event") == "finished" for event in self.events)
