"""Ask the served model about rows of the dataset: a few single records and one batch.

The rows come from the dataset the data API served, so the batch accuracy printed here is on
rows the model may have trained on: it shows the service works end to end; the honest quality
figures are the held-out test metrics that training logged to MLflow.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from forest_mlops import schema
from forest_mlops.dataset import Dataset


def record_of(row: list[str]) -> tuple[dict[str, object], int]:
    """A /predict record (the 12 features, typed) and the row's true class id."""
    typed = schema.parse_record(row)
    features: dict[str, object] = dict(
        zip(schema.FEATURE_COLUMNS, typed[: len(schema.FEATURE_COLUMNS)], strict=True)
    )
    return features, int(typed[-1])


@dataclass(frozen=True)
class Example:
    record: dict[str, object]
    actual: int
    predicted: int
    probability: float
    model_version: str


@dataclass(frozen=True)
class BatchResult:
    size: int
    correct: int
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.size if self.size else 0.0


def _predictions(body: Any) -> list[dict[str, Any]]:
    """The list of per-record answers in a /predict response."""
    if isinstance(body, dict) and isinstance(body.get("predictions"), list):
        return list(body["predictions"])
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return [body]
    raise ValueError(f"unexpected /predict response: {str(body)[:200]}")


def _class_id(answer: dict[str, Any]) -> int:
    for key in ("cover_type", "class_id", "prediction", "cover_type_id"):
        if key in answer:
            value = answer[key]
            return int(value["id"] if isinstance(value, dict) else value)
    raise ValueError(f"no class id in /predict answer: {str(answer)[:200]}")


def _probability(answer: dict[str, Any], class_id: int) -> float:
    probabilities = answer.get("probabilities")
    if isinstance(probabilities, dict):
        name = schema.COVER_TYPE_NAMES[class_id]
        value = probabilities.get(name, probabilities.get(str(class_id)))
        return float(value) if value is not None else float("nan")
    if isinstance(probabilities, list) and len(probabilities) > class_id:
        return float(probabilities[class_id])
    return float("nan")


def _version(answer: dict[str, Any], body: Any) -> str:
    for source in (answer, body if isinstance(body, dict) else {}):
        model = source.get("model")
        if isinstance(model, dict) and "version" in model:
            return str(model["version"])
        if "model_version" in source:
            return str(source["model_version"])
    return "?"


def sample_rows(data: Dataset, n: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    indexes = rng.sample(range(len(data)), min(n, len(data)))
    return [data.row(index) for index in indexes]


def predict_examples(base_url: str, rows: list[list[str]]) -> list[Example]:
    """One /predict call per row (the single-record form of the API)."""
    examples = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for row in rows:
            record, actual = record_of(row)
            response = client.post("/predict", json=record)
            response.raise_for_status()
            body = response.json()
            answer = _predictions(body)[0]
            predicted = _class_id(answer)
            examples.append(
                Example(
                    record=record,
                    actual=actual,
                    predicted=predicted,
                    probability=_probability(answer, predicted),
                    model_version=_version(answer, body),
                )
            )
    return examples


def predict_batch(base_url: str, rows: list[list[str]]) -> BatchResult:
    """One /predict call with all rows (the batch form)."""
    pairs = [record_of(row) for row in rows]
    started = time.monotonic()
    response = httpx.post(
        f"{base_url}/predict", json=[record for record, _ in pairs], timeout=120.0
    )
    response.raise_for_status()
    seconds = time.monotonic() - started
    answers = _predictions(response.json())
    if len(answers) != len(pairs):
        raise ValueError(f"/predict answered {len(answers)} predictions for {len(pairs)} records")
    correct = sum(
        _class_id(answer) == actual for answer, (_, actual) in zip(answers, pairs, strict=True)
    )
    return BatchResult(size=len(pairs), correct=correct, seconds=seconds)
