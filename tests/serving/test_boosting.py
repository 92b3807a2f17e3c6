"""The compiled HistGradientBoosting predicts what its fitted pipeline predicts (issue 23).

On real rows (the 75k dev sample; a listed skip, or a CI failure, when it is absent): the full
profile's kind of boosting pipeline (categories one-hot, so every split is numeric) is fitted
on some rows and compiled, and its classes and probabilities are compared with the pipeline's
on other rows, directly and after an MLflow round trip through the inference service's loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from forest_mlops import schema
from forest_mlops.serving import boosting, compiled, loading, pyfunc
from forest_mlops.training.pipelines import (
    HIST_GRADIENT_BOOSTING,
    SERVE_ONNX,
    CandidateSpec,
    build_pipeline,
)
from tests.conftest import SHARED_DEV_CSV
from tests.support import missing

FIT_ROWS = 15_000
CHECK_ROWS = 20_000
PARAMS = {"max_iter": 40, "max_leaf_nodes": 31, "learning_rate": 0.2}


@pytest.fixture(scope="module")
def real_rows() -> pd.DataFrame:
    missing.file(SHARED_DEV_CSV, hint="the real dev sample: equality on real rows untested")
    frame = pd.read_csv(SHARED_DEV_CSV, nrows=FIT_ROWS + CHECK_ROWS)
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame


@pytest.fixture(scope="module")
def pipeline(real_rows: pd.DataFrame) -> Any:
    fitted = build_pipeline(CandidateSpec(HIST_GRADIENT_BOOSTING, PARAMS, SERVE_ONNX), n_jobs=1)
    train = real_rows.head(FIT_ROWS)
    fitted.fit(train[list(schema.FEATURE_COLUMNS)], train[schema.TARGET_COLUMN])
    return fitted


def test_compiled_boosting_predicts_the_pipelines_classes_on_real_rows(
    pipeline: Any, real_rows: pd.DataFrame
) -> None:
    check = real_rows.iloc[FIT_ROWS:]
    features = check[list(schema.FEATURE_COLUMNS)]
    model, _ = boosting.compile_pipeline(pipeline, check.head(100))

    expected = pipeline.predict(features)
    got = model.predict(features)
    assert len(got) == CHECK_ROWS
    assert int(np.sum(got != expected)) == 0
    np.testing.assert_allclose(
        model.predict_proba(features), pipeline.predict_proba(features), atol=1e-9
    )
    assert len(set(got)) >= 5
    # Not a degenerate agreement: a real (small) model, far above the majority class.
    assert (got == check[schema.TARGET_COLUMN].to_numpy()).mean() > 0.65


def test_the_logged_pyfunc_serves_the_same_classes(
    pipeline: Any, real_rows: pd.DataFrame, tmp_path: Path
) -> None:
    check = real_rows.iloc[FIT_ROWS:]
    features = check[list(schema.FEATURE_COLUMNS)]
    model, onnx_bytes = pyfunc.compile_for_serving(pipeline, check.head(100))
    assert isinstance(model, pyfunc.CompiledBoostingModel)
    saved = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(saved),
        python_model=model,
        artifacts={pyfunc.ARTIFACT_KEY: str(pyfunc.save_onnx(onnx_bytes, tmp_path))},
        input_example=features.head(3),
    )
    expected = pipeline.predict(features)
    served = mlflow.pyfunc.load_model(str(saved))
    assert int(np.sum(np.asarray(served.predict(features)) != expected)) == 0
    estimator = loading.load_for_serving(saved)
    proba = estimator.predict_proba(features)
    assert int(np.sum(estimator.classes_[proba.argmax(axis=1)] != expected)) == 0


def test_native_category_splits_are_refused(real_rows: pd.DataFrame) -> None:
    # The sklearn-served boosting splits on native categories: no exact compiled form here.
    native = build_pipeline(CandidateSpec(HIST_GRADIENT_BOOSTING, {"max_iter": 5}), n_jobs=1)
    train = real_rows.head(3000)
    native.fit(train[list(schema.FEATURE_COLUMNS)], train[schema.TARGET_COLUMN])
    with pytest.raises(compiled.NotCompilableError):
        boosting.compile_pipeline(native, real_rows.iloc[3000:3100])
