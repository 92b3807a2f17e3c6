"""The service serves the compiled forest (issue 16) as it serves sklearn models: it hot-swaps
from the sklearn pipeline to its compiled pyfunc version and answers the same classes and
probabilities, on real rows when the dev sample is present.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from forest_mlops import schema
from forest_mlops.serving import pyfunc
from forest_mlops.serving.compiled import compile_pipeline
from forest_mlops.training.pipelines import EXTRA_TREES, CandidateSpec, build_pipeline
from tests.conftest import MlflowServer
from tests.inference import models
from tests.inference.conftest import InferenceService

pytestmark = pytest.mark.slow


def register_compiled(
    tracking_uri: str, name: str, pipeline: object, check_rows: pd.DataFrame, tmp_path: Path
) -> str:
    forest, onnx_bytes = compile_pipeline(pipeline, check_rows)
    model = pyfunc.CompiledForestModel(
        forest.encoding, [int(c) for c in forest.classes_], forest.n_trees
    )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(models.EXPERIMENT)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            artifacts={pyfunc.ARTIFACT_KEY: str(pyfunc.save_onnx(onnx_bytes, tmp_path))},
            pip_requirements=["onnxruntime", "pandas", "numpy"],
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri).set_registered_model_alias(name, "champion", version)
    return version


def test_hot_swap_to_the_compiled_forest_keeps_every_answer(
    mlflow_tracking_server: MlflowServer,
    start_inference: Callable[..., InferenceService],
    training_frame: pd.DataFrame,
    holdout_frame: pd.DataFrame,
    tmp_path: Path,
) -> None:
    pipeline = build_pipeline(
        CandidateSpec(EXTRA_TREES, {"n_estimators": 10, "max_features": 0.5}), n_jobs=1
    )
    pipeline.fit(training_frame[list(schema.FEATURE_COLUMNS)], training_frame[schema.TARGET_COLUMN])
    name = f"forest-compiled-{uuid.uuid4().hex[:8]}"
    sklearn_version = models.register(mlflow_tracking_server.url, name, pipeline)
    service = start_inference(mlflow_tracking_server, model_name=name, poll_interval=1)
    service.wait_for(lambda info: info["ready"], timeout=90)
    records = holdout_frame[list(schema.FEATURE_COLUMNS)].to_dict(orient="records")

    def answers() -> tuple[str, np.ndarray, list[int]]:
        with service.client() as client:
            response = client.post("/predict", json=records)
        assert response.status_code == 200, response.text
        body = response.json()
        versions = {a["model_version"] for a in body}
        assert len(versions) == 1
        proba = np.array([[a["probabilities"][n] for n in schema.COVER_TYPE_NAMES] for a in body])
        return versions.pop(), proba, [a["cover_type"] for a in body]

    before_version, before_proba, before_classes = answers()
    assert before_version == sklearn_version

    compiled_version = register_compiled(
        mlflow_tracking_server.url, name, pipeline, training_frame.head(200), tmp_path
    )
    info = service.wait_for(lambda i: i["model"]["version"] == compiled_version, timeout=90)
    assert compiled_version not in info["registry"]["rejected_versions"]

    after_version, after_proba, after_classes = answers()
    assert after_version == compiled_version
    assert after_classes == before_classes
    np.testing.assert_allclose(after_proba, before_proba, rtol=0, atol=1e-12)
    expected = pipeline.predict(holdout_frame[list(schema.FEATURE_COLUMNS)])
    assert after_classes == expected.tolist()
