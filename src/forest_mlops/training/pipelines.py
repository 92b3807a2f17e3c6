"""The candidate model families: scikit-learn Pipelines from raw records to class ids.

Every pipeline takes a DataFrame with schema.FEATURE_COLUMNS (numeric columns int64, the two
categorical columns as course strings) and predicts class ids 0..6, so the registered model
needs no preprocessing outside it (the model contract in docs/ARCHITECTURE.md):

    raw records -> TerrainFeatures -> category encoding -> estimator

The category vocabularies are the schema's fixed lists, not learned from the training rows:
a soil type that happens to be absent from a small table still has its column, and an
unknown value at prediction time is encoded as "none of these" instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from forest_mlops import schema

# The candidates' definition lives in a module without scikit-learn (the DAG reads it at parse
# time); these names are re-exported for the code that builds pipelines from it.
from forest_mlops.training.candidates import (
    EXTRA_TREES,
    FAMILIES,
    HIST_GRADIENT_BOOSTING,
    RANDOM_FOREST,
    SERVE_ONNX,
    SERVE_SKLEARN,
    SERVING_FORMS,
    CandidateSpec,
)
from forest_mlops.training.features import TerrainFeatures

__all__ = [
    "BUILDERS",
    "EXTRA_TREES",
    "FAMILIES",
    "HIST_GRADIENT_BOOSTING",
    "RANDOM_FOREST",
    "SERVE_ONNX",
    "SERVE_SKLEARN",
    "SERVING_FORMS",
    "CandidateSpec",
    "build_pipeline",
]

_CATEGORIES: Final = [list(schema.WILDERNESS_AREAS), list(schema.SOIL_TYPES)]
_CATEGORICAL: Final = list(schema.CATEGORICAL_COLUMNS)


def _one_hot_encoding() -> ColumnTransformer:
    # Forests need one column per category: an ordinal code would impose an order on soils.
    return ColumnTransformer(
        [
            (
                "categories",
                OneHotEncoder(
                    categories=_CATEGORIES,
                    handle_unknown="ignore",
                    sparse_output=False,
                    dtype=np.float32,
                ),
                _CATEGORICAL,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )


def _ordinal_encoding() -> ColumnTransformer:
    # HistGradientBoosting splits natively on categories given as small integer codes; an
    # unknown value becomes -1, which it treats as missing.
    return ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    categories=_CATEGORIES,
                    handle_unknown="use_encoded_value",
                    unknown_value=-1,
                ),
                _CATEGORICAL,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )


def _random_forest(params: Mapping[str, Any], seed: int, n_jobs: int) -> Pipeline:
    model = RandomForestClassifier(random_state=seed, n_jobs=n_jobs, **params)
    return _pipeline(_one_hot_encoding(), model)


def _extra_trees(params: Mapping[str, Any], seed: int, n_jobs: int) -> Pipeline:
    model = ExtraTreesClassifier(random_state=seed, n_jobs=n_jobs, **params)
    return _pipeline(_one_hot_encoding(), model)


def _hist_gradient_boosting(params: Mapping[str, Any], seed: int, n_jobs: int) -> Pipeline:
    # The encoder puts the two categorical columns first. Threads follow OMP_NUM_THREADS.
    settings = {"early_stopping": False, **params}
    model = HistGradientBoostingClassifier(
        random_state=seed, categorical_features=[0, 1], **settings
    )
    return _pipeline(_ordinal_encoding(), model)


def _hist_gradient_boosting_one_hot(params: Mapping[str, Any], seed: int) -> Pipeline:
    # The compiled form (forest_mlops.serving.boosting) handles numeric splits only: the
    # categories arrive one-hot, as for the forests, instead of as native categories.
    settings = {"early_stopping": False, **params}
    model = HistGradientBoostingClassifier(random_state=seed, **settings)
    return _pipeline(_one_hot_encoding(), model)


def _pipeline(encoding: ColumnTransformer, model: Any) -> Pipeline:
    return Pipeline(
        [("terrain", TerrainFeatures()), ("encode", encoding), ("model", model)],
    )


BUILDERS: Final[dict[str, Callable[[Mapping[str, Any], int, int], Pipeline]]] = {
    RANDOM_FOREST: _random_forest,
    EXTRA_TREES: _extra_trees,
    HIST_GRADIENT_BOOSTING: _hist_gradient_boosting,
}


def build_pipeline(spec: CandidateSpec, *, seed: int = 0, n_jobs: int = 2) -> Pipeline:
    """An unfitted pipeline for `spec`; unknown families or parameters fail here, not in fit."""
    try:
        builder = BUILDERS[spec.family]
    except KeyError:
        raise ValueError(
            f"unknown model family {spec.family!r} (expected one of {', '.join(FAMILIES)})"
        ) from None
    try:
        if spec.family == HIST_GRADIENT_BOOSTING and spec.serving == SERVE_ONNX:
            return _hist_gradient_boosting_one_hot(spec.params, seed)
        return builder(spec.params, seed, n_jobs)
    except TypeError as exc:
        raise ValueError(f"bad parameters for {spec.family}: {exc}") from exc
