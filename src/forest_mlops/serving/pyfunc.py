"""The compiled models as MLflow models: pyfuncs whose artifact is the ONNX file.

`mlflow.pyfunc.load_model` serves it like any other model (predict -> class ids); the
inference service unwraps it (`unwrap_python_model()`) to call predict_proba, as it calls an
sklearn model's. The small parts (encoding, classes, tree count) are pickled with the model
object; the trees are the ONNX artifact, read once in load_context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from forest_mlops.serving.boosting import CompiledBoosting
from forest_mlops.serving.compiled import ONNX_FILE, CompiledForest, Encoding

ARTIFACT_KEY = "forest"


class CompiledForestModel(PythonModel):
    def __init__(self, encoding: Encoding, classes: list[int], n_trees: int) -> None:
        self.encoding = encoding
        self.classes = classes
        self.n_trees = n_trees
        self._forest: CompiledForest | None = None

    def load_context(self, context: Any) -> None:
        onnx_bytes = Path(context.artifacts[ARTIFACT_KEY]).read_bytes()
        self._forest = CompiledForest(self.encoding, self.classes, self.n_trees, onnx_bytes)

    @property
    def forest(self) -> CompiledForest:
        if self._forest is None:
            raise RuntimeError("the compiled forest is not loaded (load_context was not called)")
        return self._forest

    @property
    def classes_(self) -> np.ndarray[Any, Any]:
        return self.forest.classes_

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return self.forest.predict(model_input)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return self.forest.predict_proba(frame)

    def __getstate__(self) -> dict[str, Any]:
        # The ONNX Runtime session is not picklable and is rebuilt from the artifact.
        return {**self.__dict__, "_forest": None}


class CompiledBoostingModel(PythonModel):
    """The compiled HistGradientBoosting (forest_mlops.serving.boosting), as the forest above."""

    def __init__(self, encoding: Encoding, classes: list[int], baseline: list[float]) -> None:
        self.encoding = encoding
        self.classes = classes
        self.baseline = baseline
        self._boosting: CompiledBoosting | None = None

    def load_context(self, context: Any) -> None:
        onnx_bytes = Path(context.artifacts[ARTIFACT_KEY]).read_bytes()
        self._boosting = CompiledBoosting(self.encoding, self.classes, self.baseline, onnx_bytes)

    @property
    def boosting(self) -> CompiledBoosting:
        if self._boosting is None:
            raise RuntimeError("the compiled boosting is not loaded (load_context was not called)")
        return self._boosting

    @property
    def classes_(self) -> np.ndarray[Any, Any]:
        return self.boosting.classes_

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return self.boosting.predict(model_input)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return self.boosting.predict_proba(frame)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_boosting": None}


def compile_for_serving(pipeline: Any, check_rows: pd.DataFrame) -> tuple[PythonModel, bytes]:
    """The compiled pyfunc of a fitted pipeline and its ONNX bytes: the boosting compiler for
    HistGradientBoosting, the forest compiler otherwise (each refuses what it cannot compile
    exactly: NotCompilableError)."""
    from forest_mlops.serving import boosting, compiled

    if hasattr(pipeline.named_steps["model"], "_predictors"):
        fitted, onnx_bytes = boosting.compile_pipeline(pipeline, check_rows)
        classes = [int(c) for c in fitted.classes_]
        return CompiledBoostingModel(fitted.encoding, classes, list(fitted.baseline)), onnx_bytes
    forest, onnx_bytes = compiled.compile_pipeline(pipeline, check_rows)
    model = CompiledForestModel(forest.encoding, [int(c) for c in forest.classes_], forest.n_trees)
    return model, onnx_bytes


def save_onnx(onnx_bytes: bytes, directory: Path) -> Path:
    path = directory / ONNX_FILE
    path.write_bytes(onnx_bytes)
    return path
