"""The bounded candidate search: fit each candidate on train, choose by validation macro-F1.

A profile is a fixed list of CandidateSpecs (a small grid per family, defined in
training.candidates), so a search always costs the same and its time is known
(bench/training.py measures the `full` profile):

- `full`: what the platform trains and the benchmark measures: three families; on the 75k-row
  dev sample each candidate fits in well under a minute, and the DAG fits them in parallel pods;
- `quick`: a few small models for tests and the demo, seconds on a small table.

Test rows are scored for every candidate so that the report shows them, but only validation
macro-F1 chooses the winner: the test part stays an unbiased estimate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd
from sklearn.pipeline import Pipeline

from forest_mlops.training import evaluate
from forest_mlops.training.candidates import PROFILE_NAMES, PROFILES, CandidateSpec, profile
from forest_mlops.training.pipelines import build_pipeline
from forest_mlops.training.split import SplitFrames
from forest_mlops.training.threads import limited_threads

log = logging.getLogger(__name__)

__all__ = [
    "PROFILES",
    "PROFILE_NAMES",
    "CandidateResult",
    "NotEnoughData",
    "check_split",
    "fit_candidate",
    "profile",
    "run_search",
    "select_winner",
]

# Fewer rows than this in a part makes its scores meaningless: refuse rather than register.
MIN_ROWS_PER_PART: Final = 20


class NotEnoughData(ValueError):
    """The table is too small (or too uniform) to train and compare models on."""


@dataclass
class CandidateResult:
    spec: CandidateSpec
    pipeline: Pipeline | None
    fit_seconds: float
    validation: evaluate.Scores
    test: evaluate.Scores

    @property
    def name(self) -> str:
        return self.spec.name


def check_split(split: SplitFrames) -> None:
    sizes = split.sizes()
    small = {part: n for part, n in sizes.items() if n < MIN_ROWS_PER_PART}
    if small:
        raise NotEnoughData(
            f"too few rows to train: {sizes} (each part needs at least {MIN_ROWS_PER_PART}); "
            "collect more batches first"
        )
    classes = split.train["Cover_Type"].nunique()
    if classes < 2:
        raise NotEnoughData(f"the training rows hold {classes} class; at least 2 are needed")


def fit_candidate(
    spec: CandidateSpec,
    split: SplitFrames,
    *,
    seed: int = 0,
    n_jobs: int = 2,
    fit_rows: pd.DataFrame | None = None,
) -> CandidateResult:
    """Fit on the train part (or on `fit_rows`: the refit on train + validation) and score."""
    pipeline = build_pipeline(spec, seed=seed, n_jobs=n_jobs)
    features, target = evaluate.features_and_target(split.train if fit_rows is None else fit_rows)
    # OpenMP (HistGradientBoosting) gets one thread whatever n_jobs says: its threads spin at
    # barriers whenever the process gets less CPU than it has threads (see training.threads),
    # and a full-profile fit was seen to stall for 20 minutes on a busy 2-core machine. The
    # forests parallelise with joblib (n_jobs), which has no such barriers.
    with limited_threads(1):
        started = time.perf_counter()
        pipeline.fit(features, target)
        fit_seconds = time.perf_counter() - started
        result = CandidateResult(
            spec=spec,
            pipeline=pipeline,
            fit_seconds=fit_seconds,
            validation=evaluate.score(pipeline, split.validation),
            test=evaluate.score(pipeline, split.test),
        )
    log.info(
        "%s: fit %.1f s, validation macro-F1 %.4f accuracy %.4f",
        spec.name,
        fit_seconds,
        result.validation.macro_f1,
        result.validation.accuracy,
    )
    return result


def run_search(
    split: SplitFrames,
    candidates: Sequence[CandidateSpec],
    *,
    on_result: Callable[[CandidateResult], Any] | None = None,
    seed: int = 0,
    n_jobs: int = 2,
    keep_models: bool = True,
) -> list[CandidateResult]:
    """Fit every candidate; `on_result` sees each one as soon as it is scored (for logging).

    With keep_models=False the fitted pipeline is dropped after `on_result` (it is in MLflow
    by then), so a search holds one model in memory at a time.
    """
    if not candidates:
        raise ValueError("no candidates to train")
    check_split(split)
    results = []
    for spec in candidates:
        result = fit_candidate(spec, split, seed=seed, n_jobs=n_jobs)
        if on_result is not None:
            with limited_threads(1):
                on_result(result)
        if not keep_models:
            result.pipeline = None
        results.append(result)
    return results


def select_winner(results: Sequence[CandidateResult]) -> CandidateResult:
    """Highest validation macro-F1; ties go to validation accuracy, then to the earlier one."""
    if not results:
        raise ValueError("no candidate results to choose from")
    return max(
        results,
        key=lambda r: (r.validation.macro_f1, r.validation.accuracy, -results.index(r)),
    )
