"""`make bench` fails when a benchmark misses its target, crashes or leaves no result."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.__main__ import benchmark_names, verdict


def write(results: Path, name: str, payload: dict[str, object], *, age: float = 0.0) -> None:
    path = results / f"{name}.json"
    path.write_text(json.dumps(payload))
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))


def test_a_missed_target_fails_the_run(tmp_path: Path) -> None:
    started = time.time() - 1
    write(tmp_path, "training", {"targets": {"accuracy": 0.93}, "targets_met": False})
    reason = verdict("training", 0, started, tmp_path)
    assert reason is not None and "missed its targets" in reason and "0.93" in reason


def test_met_targets_and_results_without_targets_pass(tmp_path: Path) -> None:
    started = time.time() - 1
    write(tmp_path, "training", {"targets_met": True})
    write(tmp_path, "api_data", {"results": []})
    assert verdict("training", 0, started, tmp_path) is None
    assert verdict("api_data", 0, started, tmp_path) is None


def test_a_crash_or_a_stale_result_fails_the_run(tmp_path: Path) -> None:
    started = time.time()
    write(tmp_path, "inference", {"targets_met": True}, age=3600)
    assert verdict("inference", 0, started, tmp_path) == "wrote no inference.json"
    assert verdict("ingestion", 0, started, tmp_path) == "wrote no ingestion.json"
    assert verdict("inference", 1, started, tmp_path) == "exit 1"


def test_helpers_are_not_benchmarks() -> None:
    names = benchmark_names()
    assert "training" in names and "inference" in names
    assert not [n for n in names if n.startswith("_")]
    assert "figures" not in names
