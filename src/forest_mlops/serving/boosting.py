"""A fitted HistGradientBoosting pipeline compiled for serving: numpy encoding + ONNX trees.

Why: served as its sklearn pipeline, the full profile's boosting candidate (200 rounds x 7
classes of 63-leaf trees) costs ~90 ms of CPU per 1,000 records, three times the budget; the
trees themselves are small, and ONNX Runtime's tree kernel walks them much faster. Same idea as
the forests' compiled form (forest_mlops.serving.compiled), whose encoding layout it reuses, with
what boosting needs instead of votes:

- the compiled candidate's pipeline one-hot encodes the categories (pipelines.build_pipeline),
  so every split is numeric and the layout is the forests' `Encoding`;
- HistGradientBoosting compares float64 values (`x <= num_threshold`), so the matrix and the
  thresholds stay float64 (the forests' matrix is float32, which would round the derived
  terrain columns and send rows near a threshold the other way);
- each tree adds its leaf value to its class's raw score; the scores start at the model's
  baseline and the class is their argmax, the probabilities their softmax, as in sklearn.

Summing in another order can move a raw score by a rounding error, so `compile_pipeline` checks
that the classes are the same on the rows it is given and refuses (NotCompilableError) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forest_mlops import schema
from forest_mlops.serving import compiled
from forest_mlops.serving.compiled import Encoding, NotCompilableError
from forest_mlops.serving.tree_ensemble import TreeEnsembleBuilder
from forest_mlops.terrain import DERIVED_COLUMNS, derived_values


def matrix64(encoding: Encoding, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The encoded matrix in float64 (the layout of `Encoding.transform`, which is float32)."""
    rows = len(frame)
    width = sum(len(c) for c in encoding.categories)
    out = np.zeros((rows, encoding.width), dtype=np.float64)
    # The one-hot block: the float32 transform's zeros and ones are exact in float64.
    out[:, :width] = encoding.transform(frame)[:, :width]
    numeric = {c: frame[c].to_numpy() for c in schema.NUMERIC_COLUMNS}
    derived = dict(zip(DERIVED_COLUMNS, derived_values(numeric), strict=True))
    for offset, column in enumerate(encoding.numeric, start=width):
        source = derived[column] if column in derived else numeric[column]
        out[:, offset] = np.asarray(source, dtype=np.float64)
    return out


def boosting_to_onnx(model: Any, n_features: int) -> bytes:
    """One ai.onnx.ml TreeEnsemble (opset 5, double) summing every tree into its class's score."""
    builder = TreeEnsembleBuilder(np.float64)
    for iteration in model._predictors:
        for class_id, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise NotCompilableError("a tree splits on native categories")
            is_leaf = nodes["is_leaf"].astype(bool)
            builder.add_tree(
                is_leaf=is_leaf,
                left=nodes["left"],
                right=nodes["right"],
                feature=nodes["feature_idx"],
                threshold=nodes["num_threshold"],
                leaf_targets=np.full(int(is_leaf.sum()), class_id),
                leaf_weights=nodes["value"][is_leaf],
            )
    return builder.to_onnx(
        n_features=n_features,
        n_targets=len(model.classes_),
        output="scores",
        graph="boosting",
        producer="forest_mlops.serving.boosting",
    )


class CompiledBoosting:
    """Predicts like the fitted boosting pipeline from (encoding, baseline, ONNX bytes)."""

    def __init__(
        self,
        encoding: Encoding,
        classes: Sequence[int],
        baseline: Sequence[float],
        onnx_bytes: bytes,
        *,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.encoding = encoding
        self.classes_ = np.asarray(classes)
        self.baseline = np.asarray(baseline, dtype=np.float64)
        options = ort.SessionOptions()
        # As the forests' session: large batches split over `threads`, no spinning when idle.
        options.intra_op_num_threads = threads if threads is not None else compiled.model_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            onnx_bytes, options, providers=["CPUExecutionProvider"]
        )

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        matrix = matrix64(self.encoding, frame)
        scores = np.asarray(self._session.run(None, {"X": matrix})[0], dtype=np.float64)
        return scores + self.baseline

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        scores = self.raw_scores(frame)
        exp = np.exp(scores - scores.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return np.asarray(self.classes_[np.argmax(self.raw_scores(frame), axis=1)])


def compile_pipeline(pipeline: Any, check_rows: pd.DataFrame) -> tuple[CompiledBoosting, bytes]:
    """Compile a fitted one-hot boosting pipeline; refuse unless it predicts the same classes on
    `check_rows`."""
    model = pipeline.named_steps["model"]
    if not hasattr(model, "_predictors"):
        raise NotCompilableError(f"{type(model).__name__} is not a fitted gradient boosting")
    n_classes = len(model.classes_)
    if n_classes < 3 or model.n_trees_per_iteration_ != n_classes:
        raise NotCompilableError("only a multiclass boosting (one tree per class) is compiled")
    encoding = compiled.encoding_of(pipeline)
    if encoding.width != model.n_features_in_:
        raise NotCompilableError(
            f"the encoding builds {encoding.width} columns, the model expects "
            f"{model.n_features_in_}"
        )
    onnx_bytes = boosting_to_onnx(model, encoding.width)
    baseline = [float(v) for v in np.ravel(model._baseline_prediction)]
    result = CompiledBoosting(encoding, list(model.classes_), baseline, onnx_bytes)
    features = check_rows.loc[:, list(schema.FEATURE_COLUMNS)]
    differ = int(np.sum(np.asarray(pipeline.predict(features)) != result.predict(features)))
    if differ:
        raise NotCompilableError(
            f"the compiled boosting predicts a different class for {differ} of {len(features)} rows"
        )
    return result, onnx_bytes
