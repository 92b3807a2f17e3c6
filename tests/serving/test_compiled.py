"""The compiled serving form predicts exactly what the fitted pipeline predicts.

On real rows (the 75k dev sample; skipped, saying so, when it is absent): a forest of the
full profile's kind is fitted on some rows and compiled, and its classes are compared with the
pipeline's on other rows, directly and after an MLflow round trip (log as pyfunc, then
`mlflow.pyfunc.load_model` and the inference service's loader).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from forest_mlops import schema
from forest_mlops.serving import compiled, cost, loading, pyfunc
from forest_mlops.training.pipelines import (
    EXTRA_TREES,
    RANDOM_FOREST,
    CandidateSpec,
    build_pipeline,
)
from tests.conftest import SHARED_DEV_CSV
from tests.support import missing

FIT_ROWS = 15_000
CHECK_ROWS = 20_000


@pytest.fixture(scope="module")
def real_rows() -> pd.DataFrame:
    # Absent: a failure under CI, a skip listed at the end of the run elsewhere.
    missing.file(SHARED_DEV_CSV, hint="the real dev sample: equality on real rows untested")
    frame = pd.read_csv(SHARED_DEV_CSV, nrows=FIT_ROWS + CHECK_ROWS)
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame


def fitted(family: str, params: dict[str, object], rows: pd.DataFrame) -> object:
    pipeline = build_pipeline(CandidateSpec(family, params), n_jobs=1)
    train = rows.head(FIT_ROWS)
    pipeline.fit(train[list(schema.FEATURE_COLUMNS)], train[schema.TARGET_COLUMN])
    return pipeline


@pytest.mark.parametrize(
    ("family", "params"),
    [
        (EXTRA_TREES, {"n_estimators": 12, "max_features": 0.5}),  # the champion's kind
        (RANDOM_FOREST, {"n_estimators": 8}),
    ],
)
def test_compiled_forest_predicts_the_pipelines_classes_on_real_rows(
    family: str, params: dict[str, object], real_rows: pd.DataFrame
) -> None:
    pipeline = fitted(family, params, real_rows)
    check = real_rows.iloc[FIT_ROWS:]
    features = check[list(schema.FEATURE_COLUMNS)]
    forest, _ = compiled.compile_pipeline(pipeline, check.head(100))

    expected = pipeline.predict(features)  # type: ignore[attr-defined]
    got = forest.predict(features)
    assert len(got) == CHECK_ROWS
    assert int(np.sum(got != expected)) == 0
    np.testing.assert_allclose(
        forest.predict_proba(features), pipeline.predict_proba(features), atol=1e-12
    )
    # Not a degenerate agreement: the model is a real one, with all the usual classes.
    assert len(set(got)) >= 5
    assert (got == check[schema.TARGET_COLUMN].to_numpy()).mean() > 0.8


def test_the_logged_pyfunc_serves_the_same_classes(real_rows: pd.DataFrame, tmp_path: Path) -> None:
    pipeline = fitted(EXTRA_TREES, {"n_estimators": 12, "max_features": 0.5}, real_rows)
    check = real_rows.iloc[FIT_ROWS:]
    features = check[list(schema.FEATURE_COLUMNS)]
    forest, onnx_bytes = compiled.compile_pipeline(pipeline, check.head(100))
    model = pyfunc.CompiledForestModel(forest.encoding, [int(c) for c in forest.classes_], 12)
    saved = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(saved),
        python_model=model,
        artifacts={pyfunc.ARTIFACT_KEY: str(pyfunc.save_onnx(onnx_bytes, tmp_path))},
        input_example=features.head(3),
    )
    expected = pipeline.predict(features)  # type: ignore[attr-defined]

    served = mlflow.pyfunc.load_model(str(saved))
    assert int(np.sum(np.asarray(served.predict(features)) != expected)) == 0
    # The inference service's loader unwraps it into something with predict_proba.
    estimator = loading.load_for_serving(saved)
    proba = estimator.predict_proba(features)
    assert int(np.sum(estimator.classes_[proba.argmax(axis=1)] != expected)) == 0
    # Smaller than the sklearn artifact of the same trees, by an order of magnitude.
    sklearn_saved = tmp_path / "sklearn"
    mlflow.sklearn.save_model(pipeline, str(sklearn_saved), serialization_format="cloudpickle")
    assert cost.directory_mb(saved) * 5 < cost.directory_mb(sklearn_saved)


def test_thresholds_round_down_so_equal_values_branch_as_in_sklearn() -> None:
    thresholds = np.array([0.1, 1 / 3, 2.5, 1e-8, -0.7])
    stored = compiled._threshold_below(thresholds)
    assert stored.dtype == np.float32
    assert np.all(stored.astype(np.float64) <= thresholds)
    # The next float32 up is above the float64 threshold: no float32 input lies in between.
    assert np.all(np.nextafter(stored, np.float32(np.inf)).astype(np.float64) > thresholds)
    # 0.1 as float32 rounds UP (0.100000001...): a plain cast would send x=float32(0.1),
    # which sklearn sends right (x > 0.1), to the left.
    assert np.float64(np.float32(0.1)) > 0.1
    assert stored[0] < np.float32(0.1)


def test_a_forest_with_an_impure_leaf_is_refused() -> None:
    # Identical rows with different labels cannot be split apart: the leaf holding them is
    # impure, and its vote is not one class.
    rows = pd.DataFrame(
        {
            **{c: [100, 100, 200, 300] for c in schema.NUMERIC_COLUMNS},
            "Wilderness_Area": [schema.WILDERNESS_AREAS[0]] * 4,
            "Soil_Type": [schema.SOIL_TYPES[0]] * 4,
        }
    )
    pipeline = build_pipeline(CandidateSpec(EXTRA_TREES, {"n_estimators": 3}), n_jobs=1)
    pipeline.fit(rows, [0, 1, 2, 3])
    with pytest.raises(compiled.NotCompilableError, match="impure leaf"):
        compiled.compile_pipeline(pipeline, rows)
