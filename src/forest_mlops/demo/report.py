"""The demo's summary: printed at the end and written to <workdir>/summary.json.

The JSON is the machine-readable record of a run (the demo's test and bench/demo.py read it);
the text is the same facts for a person, with what to open next.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forest_mlops import schema
from forest_mlops.demo.collection import CollectionState
from forest_mlops.demo.mlflow_store import TrainingResult
from forest_mlops.demo.predictions import BatchResult, Example

# Metrics shown per candidate when training logged them (others stay in MLflow).
HEADLINE_METRICS = (
    "validation_macro_f1",
    "validation_accuracy",
    "test_macro_f1",
    "test_accuracy",
    "fit_seconds",
)
# Column titles for them (the metric names are long for a table).
METRIC_TITLES = {
    "validation_macro_f1": "val macro-F1",
    "validation_accuracy": "val accuracy",
    "test_macro_f1": "test macro-F1",
    "test_accuracy": "test accuracy",
    "fit_seconds": "fit s",
}
SYNTHETIC_TAG = "data.synthetic"
WINNER_TAG = "training.winner"


class PhaseTimer:
    """Wall time per phase of the run, in the order the phases ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.monotonic()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.monotonic() - started, 2)

    def total(self) -> float:
        return round(time.monotonic() - self._started, 2)


@dataclass
class Summary:
    workdir: str
    dataset: dict[str, Any] = field(default_factory=dict)
    collection: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0
    status: str = "running"
    error: str | None = None

    def set_collection(self, state: CollectionState, runs: int, already: bool) -> None:
        self.collection = {
            "group": state.group,
            "runs": runs,
            "already_collected": already,
            "complete": state.complete,
            "stored_rows": state.stored_rows,
            "received_rows": state.received_rows,
            "batches": [asdict(batch) for batch in state.batches],
        }

    def set_training(self, result: TrainingResult) -> None:
        champion = result.champion
        self.training = {
            "parent_run_id": result.parent_run_id,
            "synthetic": result.parent_tags.get(SYNTHETIC_TAG, "").lower() == "true",
            "winner": result.parent_tags.get(WINNER_TAG),
            "registered_version": result.registered_version,
            "promotion": result.promotion,
            "lineage": {k: v for k, v in result.parent_tags.items() if k.startswith("data.")},
            "candidates": [
                {"name": c.name, "run_id": c.run_id, "metrics": c.metrics}
                for c in result.candidates
            ],
            "champion": None
            if champion is None
            else {"version": champion.version, "run_id": champion.run_id},
        }

    def set_predictions(self, examples: list[Example], batch: BatchResult) -> None:
        self.predictions = {
            "examples": [asdict(example) for example in examples],
            "batch": {
                "size": batch.size,
                "correct": batch.correct,
                "accuracy": round(batch.accuracy, 4),
                "seconds": round(batch.seconds, 3),
            },
        }

    def write(self, path: Path) -> None:
        """Atomically, so a reader polling for the file never sees half of it."""
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".summary-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(asdict(self), stream, indent=2, default=str, allow_nan=False)
        os.replace(tmp, path)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def render_collection(collection: dict[str, Any]) -> list[str]:
    lines = [f"  group {collection['group']}:  batch  requests  rows received  rows stored"]
    for batch in collection["batches"]:
        lines.append(
            f"            {batch['batch']:>5}  {batch['requests']:>8}  "
            f"{batch['received']:>13,}  {batch['stored']:>11,}"
        )
    lines.append(
        f"            total  {'':>8}  {collection['received_rows']:>13,}  "
        f"{collection['stored_rows']:>11,}"
        + ("  (collected by an earlier run)" if collection.get("already_collected") else "")
    )
    return lines


def render_candidates(training: dict[str, Any]) -> list[str]:
    candidates = training["candidates"]
    if not candidates:
        return ["  (no candidate runs found)"]
    present = [m for m in HEADLINE_METRICS if any(m in c["metrics"] for c in candidates)]
    width = max(len(c["name"]) for c in candidates) + 2
    lines = ["  " + "candidate".ljust(width) + "".join(f"{METRIC_TITLES[m]:>15}" for m in present)]
    for c in candidates:
        mark = " *" if c["name"] == training.get("winner") else ""
        values = "".join(f"{_fmt(c['metrics'].get(m, math.nan)):>15}" for m in present)
        lines.append("  " + (c["name"] + mark).ljust(width) + values)
    lines.append("  (* the winner: best validation macro-F1)")
    return lines


def render_champion(training: dict[str, Any]) -> list[str]:
    promotion = training.get("promotion") or {}
    version = training.get("registered_version") or "?"
    decision = promotion.get("decision", "")
    lines = [f"  registered: version {version} of the winner, alias challenger"]
    rows = promotion.get("test_rows", "?")
    new_f1 = promotion.get("challenger_test_macro_f1", "")
    if decision == "promoted_first":
        lines.append(
            f"  champion:   version {version}: there was no champion yet "
            f"(its test macro-F1 {_num(new_f1)} on {rows} test rows)"
        )
    elif decision in ("promoted", "kept_champion"):
        old = promotion.get("champion_version", "?")
        comparison = (
            f"macro-F1 {_num(new_f1)} vs {_num(promotion.get('champion_test_macro_f1', ''))} "
            f"for version {old}, re-scored on the same {rows} test rows, "
            f"margin {promotion.get('margin', '?')}"
        )
        if decision == "promoted":
            lines.append(f"  champion:   version {version}: it beat the champion ({comparison})")
        else:
            lines.append(
                f"  champion:   version {old} stays: the new model did not beat it ({comparison})"
            )
    else:
        lines.append(f"  promotion decision: {decision or 'not recorded'}")
    champion = training.get("champion")
    if champion is None:
        lines.append("  (the registry has no champion alias)")
    return lines


def _num(value: str) -> str:
    try:
        return f"{float(value):.4f}"
    except ValueError:
        return value or "?"


def render_predictions(predictions: dict[str, Any]) -> list[str]:
    lines = []
    for example in predictions["examples"]:
        record = example["record"]
        where = (
            f"Elevation {record['Elevation']} m, {record['Wilderness_Area']}, "
            f"soil {record['Soil_Type']}"
        )
        predicted = schema.COVER_TYPE_NAMES[example["predicted"]]
        actual = schema.COVER_TYPE_NAMES[example["actual"]]
        mark = "ok" if example["predicted"] == example["actual"] else "MISS"
        lines.append(
            f"  {where:<46} -> {predicted:<17} (p={_fmt(example['probability'])}; "
            f"actual {actual}) {mark}"
        )
    batch = predictions["batch"]
    lines.append(
        f"  batch of {batch['size']} records in one request: {batch['seconds'] * 1000:.0f} ms, "
        f"{batch['accuracy']:.1%} match their labels (rows the model may have trained on; "
        "held-out test metrics are above)"
    )
    return lines


def render(summary: Summary) -> list[str]:
    lines = ["", "=" * 78, "forest-mlops demo: summary", "=" * 78]
    data = summary.dataset
    lines.append(f"Data:       {data.get('description', '?')} ({data.get('rows', 0):,} rows)")
    if data.get("synthetic") or summary.training.get("synthetic"):
        tagged = "tagged data.synthetic=true in MLflow" if summary.training.get("synthetic") else ""
        lines.append(
            f"            SYNTHETIC DATA: the model below describes no real forest. {tagged}"
        )
    if summary.collection:
        lines += ["", "Collected (forest_cover_data_extraction):"]
        lines += render_collection(summary.collection)
    if summary.training:
        lines += ["", "Candidates (forest_cover_model_training; MLflow nested runs):"]
        lines += render_candidates(summary.training)
        lines += ["", *render_champion(summary.training)]
    if summary.predictions:
        lines += ["", "Predictions from the inference service:"]
        lines += render_predictions(summary.predictions)
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in summary.timings.items())]
    lines.append(f"Total: {summary.total_seconds:.1f} s")
    if summary.next_steps:
        lines += ["", "Next:"] + [f"  {step}" for step in summary.next_steps]
    return lines
