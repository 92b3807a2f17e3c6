"""The N-node projection of bench/training.py (issue 23): longest candidate first onto the
least loaded node, each candidate paying a pod start-up, plus the other steps' pods."""

from __future__ import annotations

import pytest

from bench.cluster_search import makespan
from bench.training import projection


def test_one_node_runs_everything_in_turn_and_enough_nodes_only_the_slowest() -> None:
    durations = [100.0, 60.0, 40.0, 30.0]
    assert makespan(durations, 1, startup=10.0) == pytest.approx(230.0 + 4 * 10.0)
    # Two nodes: 100 | 60 + 40, then 30 joins the first (110 vs 120 with start-ups).
    assert makespan(durations, 2, startup=10.0) == pytest.approx(max(110 + 40, 120))
    assert makespan(durations, 8, startup=10.0) == pytest.approx(110.0)


def test_the_whole_run_adds_the_other_steps_each_in_its_own_pod() -> None:
    steps = {"prepare": 5.0, "evaluate": 50.0, "register": 5.0}
    projected = projection([100.0, 60.0], steps, startup=10.0)
    assert set(projected) == {"1", "2", "4", "8"}
    assert projected["8"]["search_seconds"] == pytest.approx(110.0)
    assert projected["8"]["run_seconds"] == pytest.approx(110.0 + 60.0 + 3 * 10.0)
    assert projected["1"]["search_seconds"] == pytest.approx(180.0)
