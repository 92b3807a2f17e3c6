"""Progress of the DAG runs: the Airflow child's events as console lines and phase timings."""

from __future__ import annotations

import time
from typing import Any

from forest_mlops.demo.collection import BatchCount, CollectionState
from forest_mlops.demo.console import Console
from forest_mlops.demo.report import PhaseTimer, Summary

N_BATCHES = 10


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
            self.console.info(
                f"Airflow ready (DAGs parsed, in-process API warmed) {event['seconds']:.0f} s "
                "after its start"
            )
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
                    when = (
                        "by an earlier run"
                        if event["run"] == 0
                        else f"run {event['run']}, {self.console.elapsed():.0f} s"
                    )
                    self.console.info(
                        f"batch {batch.batch}: {batch.stored:>7,} rows stored "
                        f"({batch.requests} requests, {batch.received:,} rows received; {when})"
                        f" - {len(self.batches_seen)}/{N_BATCHES} batches"
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
                f"{self.stored_rows:,} rows stored ({waited:.0f} s)",
                key=(self.phase, len(self.batches_seen)),
            )
        else:
            self.console.status(f"{self.phase}... {waited:.0f} s", key=self.phase)
