"""bench/cluster_search.py: the parallel-pods-vs-one-pod figures from a `make e2e` result
(issue 23), on a hand-made result whose answers are worked out below."""

from __future__ import annotations

from typing import Any

import pytest

from bench.cluster_search import comparison


def pod(
    task: str, node: str, created: str, started: str, ended: str, seconds: float
) -> dict[str, Any]:
    return {
        "task": task,
        "state": "success",
        "pod": f"pod-{task}",
        "node": node,
        "pod_created": created,
        "task_started": started,
        "task_ended": ended,
        "task_seconds": seconds,
        "pod_to_task_seconds": 10.0 if task != "c" else 20.0,
    }


def e2e_result(one_pod_seconds: dict[str, float]) -> dict[str, Any]:
    # a and b start together on two workers, c follows a: the search spans 12:00:00-12:02:30.
    pods = [
        pod("a", "w1", "2026-12-05T12:00:00+00:00", "12:00:10", "2026-12-05T12:01:10Z", 60.0),
        pod("b", "w2", "2026-12-05T12:00:00+00:00", "12:00:10", "2026-12-05T12:01:40Z", 90.0),
        pod("c", "w1", "2026-12-05T12:01:10+00:00", "12:01:30", "2026-12-05T12:02:30Z", 60.0),
    ]
    placements = {f"cand-{p['task']}": {"pod": p["pod"], "seconds": 50.0} for p in pods}
    return {
        "finished": "2026-12-05T13:00:00Z",
        "training_candidates": {
            "run_id": "r1",
            "candidates": 3,
            "pods": pods,
            "placements": placements,
            "rows_used": "70000",
        },
        "training_one_pod": {
            "placements": {f"cand-{k}": {"seconds": v} for k, v in one_pod_seconds.items()},
            "rows_used": "70000",
        },
    }


def test_parallel_wall_time_runs_from_the_first_pod_to_the_last_task_end() -> None:
    figures = comparison(e2e_result({"a": 50.0, "b": 80.0, "c": 50.0}))
    assert figures["parallel_search_seconds"] == 150.0
    assert figures["one_pod_search_seconds"] == 180.0
    assert figures["pod_startup_seconds"] == 10.0  # the median of 10, 10, 20
    assert figures["parallel_within_one_pod_plus_startup"] is True
    assert figures["same_candidates"] is True
    assert figures["same_rows"] is True
    assert figures["nodes"] == ["w1", "w2"]
    assert [c["name"] for c in figures["candidates"]] == ["cand-a", "cand-b", "cand-c"]


def test_the_comparison_fails_when_the_pods_were_slower_than_one_pod() -> None:
    figures = comparison(e2e_result({"a": 40.0, "b": 50.0, "c": 40.0}))  # 130 + 10 < 150
    assert figures["parallel_within_one_pod_plus_startup"] is False


def test_projection_uses_the_measured_durations_and_start_up() -> None:
    figures = comparison(e2e_result({"a": 50.0, "b": 80.0, "c": 50.0}))
    projected = figures["projection_search_seconds"]
    assert projected["1"] == pytest.approx(210.0 + 3 * 10.0)
    assert projected["8"] == pytest.approx(100.0)  # the slowest task plus one start-up
    assert figures["eight_nodes_within_target"] is True  # 100 <= 90 + 60


def test_searches_on_different_snapshots_are_flagged() -> None:
    result = e2e_result({"a": 50.0, "b": 80.0, "c": 50.0})
    result["training_one_pod"]["rows_used"] = "71000"
    assert comparison(result)["same_rows"] is False


def test_an_old_or_partial_e2e_result_is_named_not_guessed() -> None:
    with pytest.raises(ValueError, match="run make e2e"):
        comparison({"training_candidates": {"pods": []}})
    result = e2e_result({"a": 1.0})
    result["training_candidates"]["pods"][0]["state"] = "failed"
    with pytest.raises(ValueError, match="not every candidate task succeeded"):
        comparison(result)
