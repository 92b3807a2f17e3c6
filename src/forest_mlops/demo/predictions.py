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


def _answers(body: Any, expected: int) -> list[dict[str, Any]]:
    """The per-record answers of a /predict response (an object for one record, else a list)."""
    answers = [body] if isinstance(body, dict) else body
    if not isinstance(answers, list) or len(answers) != expected:
        raise ValueError(f"/predict answered {str(body)[:200]} for {expected} record(s)")
    return answers


def sample_rows(data: Dataset, n: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    indexes = rng.sample(range(len(data)), min(n, len(data)))
    return [data.row(index) for index in indexes]


def predict_examples(base_url: str, rows: list[list[str]]) -> list[Example]:
    """One /predict call per row (the single-record form of the API).

    The inference service answers a record with `cover_type` (class id), `cover_type_name`,
    `probabilities` by class name and the `model_version` that answered.
    """
    examples = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for row in rows:
            record, actual = record_of(row)
            response = client.post("/predict", json=record)
            response.raise_for_status()
            answer = _answers(response.json(), 1)[0]
            examples.append(
                Example(
                    record=record,
                    actual=actual,
                    predicted=int(answer["cover_type"]),
                    probability=float(answer["probabilities"][answer["cover_type_name"]]),
                    model_version=str(answer["model_version"]),
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
    answers = _answers(response.json(), len(pairs))
    correct = sum(
        int(answer["cover_type"]) == actual
        for answer, (_, actual) in zip(answers, pairs, strict=True)
    )
    return BatchResult(size=len(pairs), correct=correct, seconds=seconds)
