"""The compiled forest as an MLflow model: a pyfunc whose artifact is the ONNX file.

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


def save_onnx(onnx_bytes: bytes, directory: Path) -> Path:
    path = directory / ONNX_FILE
    path.write_bytes(onnx_bytes)
    return path
