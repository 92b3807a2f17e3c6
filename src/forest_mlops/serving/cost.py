"""What a model costs to serve, measured at training time, and the budget it must fit.

Measured on the logged model as serving gets it: the artifact is downloaded from MLflow into a
fresh folder (its size on disk is what every replica downloads), loaded with
`loading.load_for_serving` (the service's own loader, timed), then asked for predict_proba on
one record (repeated: p50, p99) and on 1,000 records (repeated: p50), in one thread as the
service calls it.

Size is exact and the same on every machine. Wall-clock load time and latency grow with
whatever else runs on the training machine (on a 2-core machine shared with builds, a load
average of 15 stretched them about eightfold), so the budget is checked against the CPU time
of the process instead (`load_cpu_seconds`, `batch_cpu_p50_ms`), measured with one model
thread: on an idle machine that is what the wall clock shows, and it hardly depends on what
else runs. The wall-clock figures are logged too, with the 1-minute load average beside them.
The single-record p99 at 8 concurrent clients is a service-level figure that only the
inference bench measures.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

import pandas as pd
from threadpoolctl import threadpool_limits

from forest_mlops import schema
from forest_mlops.serving.loading import load_for_serving

SINGLE_REPEATS: Final = 200
BATCH_ROWS: Final = 1000
BATCH_REPEATS: Final = 15
METRIC_PREFIX: Final = "serving_"


@dataclass(frozen=True)
class ServingCost:
    artifact_mb: float  # 10^6 bytes on disk, the downloaded model folder
    load_seconds: float  # wall clock
    load_cpu_seconds: float  # CPU time of the process while loading
    single_p50_ms: float  # wall clock, one record
    single_p99_ms: float
    batch_p50_ms: float  # wall clock, predict_proba of BATCH_ROWS records
    batch_cpu_p50_ms: float  # CPU time of the same calls
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
        if cost.load_cpu_seconds > self.load_seconds:
            over.append(f"load {cost.load_cpu_seconds:.2f} CPU s > {self.load_seconds:g} s")
        if cost.batch_cpu_p50_ms > self.batch_p50_ms:
            over.append(
                f"{BATCH_ROWS} records p50 {cost.batch_cpu_p50_ms:.1f} CPU ms > "
                f"{self.batch_p50_ms:g} ms (wall {cost.batch_p50_ms:.1f} ms at load average "
                f"{cost.load_average_1m:.1f})"
            )
        return over

    def tags(self) -> dict[str, str]:
        return {f"budget.{k}": f"{v:g}" for k, v in asdict(self).items()}


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _times_ms(call: Any, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds of each call."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        cpu.append((time.process_time() - cpu_started) * 1e3)
        wall.append((time.perf_counter() - started) * 1e3)
    return wall, cpu


@contextmanager
def _one_model_thread() -> Iterator[None]:
    # The compiled model reads its thread count when it loads (serving.compiled.model_threads).
    before = os.environ.get("FOREST_MODEL_THREADS")
    os.environ["FOREST_MODEL_THREADS"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["FOREST_MODEL_THREADS"]
        else:
            os.environ["FOREST_MODEL_THREADS"] = before


def measure_local(local: Path, rows: pd.DataFrame) -> ServingCost:
    """The cost of the model saved in `local`, predicting `rows` (at least one row)."""
    features = rows.loc[:, list(schema.FEATURE_COLUMNS)]
    if features.empty:
        raise ValueError("cannot measure latency without rows")
    size = directory_mb(local)
    with _one_model_thread(), threadpool_limits(limits=1):
        started, cpu_started = time.perf_counter(), time.process_time()
        model = load_for_serving(local)
        load_seconds = time.perf_counter() - started
        load_cpu_seconds = time.process_time() - cpu_started
        one = features.head(1)
        batch = features.sample(n=BATCH_ROWS, replace=len(features) < BATCH_ROWS, random_state=0)
        model.predict_proba(one)  # first call: lazy initialisation is not latency
        single, _ = _times_ms(lambda: model.predict_proba(one), SINGLE_REPEATS)
        batches, batches_cpu = _times_ms(lambda: model.predict_proba(batch), BATCH_REPEATS)
    return ServingCost(
        artifact_mb=size,
        load_seconds=load_seconds,
        load_cpu_seconds=load_cpu_seconds,
        single_p50_ms=statistics.median(single),
        single_p99_ms=statistics.quantiles(single, n=100)[98],
        batch_p50_ms=statistics.median(batches),
        batch_cpu_p50_ms=statistics.median(batches_cpu),
        load_average_1m=os.getloadavg()[0],
    )


def measure(model_uri: str, rows: pd.DataFrame) -> ServingCost:
    """Download `model_uri` as serving does and measure it."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="serving-cost-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return measure_local(local, rows)
