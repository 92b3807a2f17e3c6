"""What a model costs to serve, measured at training time, and the budget it must fit.

Measured on the logged model as serving gets it: the artifact is downloaded from MLflow into a
fresh folder (its size on disk is what every replica downloads), loaded with
`loading.load_for_serving` (the service's own loader, timed), then asked for predict_proba on
one record (repeated: p50, p99) and on 1,000 records (repeated: p50), in one thread as the
service calls it.

Size is exact and the same on every machine. Load time and latency are wall-clock times on
the training machine and grow with whatever else runs there: the 1-minute load average is
logged beside them so that a figure can be read against how busy the machine was. The
budget's latency limit is checked against these training-time figures; the single-record p99
at 8 concurrent clients is a service-level figure that only the inference bench measures.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

import pandas as pd

from forest_mlops import schema
from forest_mlops.serving.loading import load_for_serving

SINGLE_REPEATS: Final = 200
BATCH_ROWS: Final = 1000
BATCH_REPEATS: Final = 15
METRIC_PREFIX: Final = "serving_"


@dataclass(frozen=True)
class ServingCost:
    artifact_mb: float  # 10^6 bytes on disk, the downloaded model folder
    load_seconds: float
    single_p50_ms: float
    single_p99_ms: float
    batch_p50_ms: float  # predict_proba of BATCH_ROWS records
    load_average_1m: float

    def as_metrics(self) -> dict[str, float]:
        return {f"{METRIC_PREFIX}{k}": float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_metrics(cls, metrics: dict[str, float]) -> ServingCost | None:
        """From a run's metrics; None when the run has none (trained before issue 16)."""
        try:
            values = {f.name: float(metrics[f"{METRIC_PREFIX}{f.name}"]) for f in fields(cls)}
        except KeyError:
            return None
        return cls(**values)


@dataclass(frozen=True)
class Budget:
    """Upper limits a version must fit to become champion (TrainingSettings sets them)."""

    artifact_mb: float = 30.0
    load_seconds: float = 3.0
    batch_p50_ms: float = 30.0

    def excess(self, cost: ServingCost) -> list[str]:
        """What exceeds the budget, one phrase each; empty when the cost fits."""
        over = []
        if cost.artifact_mb > self.artifact_mb:
            over.append(f"artifact {cost.artifact_mb:.1f} MB > {self.artifact_mb:g} MB")
        if cost.load_seconds > self.load_seconds:
            over.append(f"load {cost.load_seconds:.2f} s > {self.load_seconds:g} s")
        if cost.batch_p50_ms > self.batch_p50_ms:
            over.append(
                f"{BATCH_ROWS} records p50 {cost.batch_p50_ms:.1f} ms > {self.batch_p50_ms:g} ms"
                f" (load average {cost.load_average_1m:.1f})"
            )
        return over

    def tags(self) -> dict[str, str]:
        return {f"budget.{k}": f"{v:g}" for k, v in asdict(self).items()}


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _times_ms(call: Any, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return times


def measure_local(local: Path, rows: pd.DataFrame) -> ServingCost:
    """The cost of the model saved in `local`, predicting `rows` (at least one row)."""
    features = rows.loc[:, list(schema.FEATURE_COLUMNS)]
    if features.empty:
        raise ValueError("cannot measure latency without rows")
    size = directory_mb(local)
    started = time.perf_counter()
    model = load_for_serving(local)
    load_seconds = time.perf_counter() - started
    one = features.head(1)
    batch = features.sample(n=BATCH_ROWS, replace=len(features) < BATCH_ROWS, random_state=0)
    model.predict_proba(one)  # first call: lazy initialisation is not latency
    single = _times_ms(lambda: model.predict_proba(one), SINGLE_REPEATS)
    batches = _times_ms(lambda: model.predict_proba(batch), BATCH_REPEATS)
    return ServingCost(
        artifact_mb=size,
        load_seconds=load_seconds,
        single_p50_ms=statistics.median(single),
        single_p99_ms=statistics.quantiles(single, n=100)[98],
        batch_p50_ms=statistics.median(batches),
        load_average_1m=os.getloadavg()[0],
    )


def measure(model_uri: str, rows: pd.DataFrame) -> ServingCost:
    """Download `model_uri` as serving does and measure it."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="serving-cost-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return measure_local(local, rows)
