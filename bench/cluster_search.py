"""The `full` search on the kind cluster: candidates in parallel pods (the training DAG's mapped
tasks) against the same candidates one after another in one pod (the retraining Job), and the
wall time projected onto N nodes from what the cluster measured.

Nothing is run here: `make e2e` records both searches on the real cluster in
bench/results/e2e-kind.json (`training_candidates`: each candidate task's pod, node, pod
creation, task start and end; `training_one_pod`: the retraining Job's per-candidate times, same
data once collection has finished) and this module turns them into figures. `python -m
bench.training` stores them under `cluster` in bench/results/training.json;
`python -m bench.cluster_search` refreshes only that part after a new `make e2e`.

Pod start-up is measured, not assumed: from a candidate pod's creation to its task starting in
it (scheduling, container start, the task runner's imports), the median over the run's pods.
The projection places the measured task durations longest first onto N nodes, each candidate
paying that start-up (bench.training.makespan).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
E2E = RESULTS_DIR / "e2e-kind.json"
TRAINING = RESULTS_DIR / "training.json"
NODES = (1, 2, 4, 8)
# The 8-node projection must stay within the slowest candidate plus this (issue 23).
PROJECTION_SLACK_SECONDS = 60.0


def makespan(durations: list[float], nodes: int, startup: float) -> float:
    """Longest candidate first onto the least loaded node; each candidate pays a pod start-up."""
    loads = [0.0] * nodes
    for duration in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += startup + duration
    return max(loads)


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def comparison(e2e: dict[str, Any]) -> dict[str, Any]:
    """Figures of both searches from one `make e2e` result; raises ValueError naming what the
    result lacks (an e2e run from before these were recorded, or one that stopped early)."""
    parallel, one_pod = e2e.get("training_candidates"), e2e.get("training_one_pod")
    if not parallel or not one_pod or "placements" not in parallel:
        raise ValueError(
            "bench/results/e2e-kind.json holds no parallel/one-pod training figures: run make e2e"
        )
    pods = [p for p in parallel["pods"] if p["state"] == "success"]
    if len(pods) != parallel["candidates"] or any(p.get("task_seconds") is None for p in pods):
        raise ValueError(f"not every candidate task succeeded with its timings: {parallel['pods']}")
    by_pod = {v["pod"]: name for name, v in parallel["placements"].items()}
    candidates = [
        {
            "name": by_pod.get(p["pod"], p["task"]),
            "task": p["task"],
            "node": p["node"],
            "task_seconds": p["task_seconds"],
            "pod_to_task_seconds": p["pod_to_task_seconds"],
            "fit_and_log_seconds": parallel["placements"]
            .get(by_pod.get(p["pod"], ""), {})
            .get("seconds"),
        }
        for p in pods
    ]
    wall = (
        max(_time(p["task_ended"]) for p in pods) - min(_time(p["pod_created"]) for p in pods)
    ).total_seconds()
    startup = statistics.median(p["pod_to_task_seconds"] for p in pods)
    one_pod_candidates = {name: v["seconds"] for name, v in one_pod["placements"].items()}
    one_pod_search = sum(one_pod_candidates.values())
    same = set(one_pod_candidates) == set(parallel["placements"])
    durations = [c["task_seconds"] for c in candidates]
    slowest = max(durations)
    projected = {str(n): round(makespan(durations, n, startup), 1) for n in NODES}
    return {
        "source": "bench/results/e2e-kind.json",
        "e2e_finished": e2e.get("finished"),
        "run_id": parallel["run_id"],
        "rows_used": {"parallel": parallel.get("rows_used"), "one_pod": one_pod.get("rows_used")},
        "same_candidates": same,
        # Both searches trained on the same snapshot (the e2e waits for the training run on
        # every collected row); otherwise their times are not comparable.
        "same_rows": parallel.get("rows_used") == one_pod.get("rows_used"),
        "nodes": sorted({c["node"] for c in candidates}),
        "candidates": candidates,
        "parallel_search_seconds": round(wall, 1),
        "one_pod_search_seconds": round(one_pod_search, 1),
        "one_pod_candidates_seconds": one_pod_candidates,
        "pod_startup_seconds": round(startup, 1),
        # The goal: the pods together no slower than one pod doing the same work plus one
        # pod's start-up (on kind both workers share this machine's cores).
        "parallel_within_one_pod_plus_startup": wall <= one_pod_search + startup,
        "slowest_candidate_seconds": slowest,
        "projection_search_seconds": projected,
        "eight_nodes_target_seconds": slowest + PROJECTION_SLACK_SECONDS,
        "eight_nodes_within_target": projected["8"] <= slowest + PROJECTION_SLACK_SECONDS,
    }


def refresh() -> dict[str, Any]:
    """Rewrite the `cluster` part of training.json from the latest e2e result."""
    figures = comparison(json.loads(E2E.read_text()))
    training = json.loads(TRAINING.read_text())
    training["cluster"] = figures
    TRAINING.write_text(json.dumps(training, indent=2) + "\n")
    print_figures(figures)
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    print(f"on the kind cluster (run {figures['run_id']}, nodes {', '.join(figures['nodes'])}):")
    for c in figures["candidates"]:
        print(
            f"  {c['name']:<70} {c['node']:<22} task {c['task_seconds']:>6.1f} s, "
            f"pod to task {c['pod_to_task_seconds']:>5.1f} s"
        )
    print(
        f"parallel pods {figures['parallel_search_seconds']:.0f} s vs one pod "
        f"{figures['one_pod_search_seconds']:.0f} s + start-up {figures['pod_startup_seconds']:.0f}"
        f" s (within: {figures['parallel_within_one_pod_plus_startup']}; same candidates: "
        f"{figures['same_candidates']}, same rows: {figures['same_rows']} {figures['rows_used']})"
    )
    projected = ", ".join(
        f"{n}: {s:.0f} s" for n, s in figures["projection_search_seconds"].items()
    )
    print(
        f"projected search on N nodes: {projected}; slowest candidate "
        f"{figures['slowest_candidate_seconds']:.0f} s, 8-node target "
        f"{figures['eight_nodes_target_seconds']:.0f} s"
    )


if __name__ == "__main__":
    refresh()
