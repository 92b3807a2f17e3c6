"""A fitted forest pipeline compiled for serving: numpy preprocessing + an ONNX tree ensemble.

Why: the fitted ExtraTrees pipeline costs 133 MB as an sklearn artifact (each node stores
impurity, sample counts and a 7-class value array) and about 7 ms of pandas/ColumnTransformer
work per predict call whatever the row count. Serving needs far less: for each interior node a
feature, a threshold and two children; for each leaf its class. This module writes exactly
that into one ONNX `TreeEnsemble` node (ai.onnx.ml opset 5, tensor attributes), evaluated by
ONNX Runtime's tree kernels, and replaces the pipeline's encoding step by a few numpy
operations that build the same matrix.

The compiled form predicts the same classes as the fitted pipeline, by construction:
- the trees see the same float32 matrix (sklearn casts its input to float32 before the trees);
- sklearn goes left when `x <= threshold` with a float64 threshold; for a float32 x that is
  the same as `x <= t32` where t32 is the largest float32 not above the threshold, which is what
  is stored (a plain cast could round up and send a value equal to t32 the wrong way);
- every leaf of these forests is pure (min_samples_leaf=1, no identical rows with different
  labels left unsplit), so a tree's vote is a one-hot vector, the ensemble sums exact integer
  votes and the argmax (first maximum on ties, as numpy and sklearn) is the same class.
  A forest with an impure leaf is refused (NotCompilable), not approximated.
`compile_pipeline` also checks the equality on the rows it is given before returning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from forest_mlops import schema
from forest_mlops.serving.tree_ensemble import TreeEnsembleBuilder
from forest_mlops.terrain import DERIVED_COLUMNS, derived_values

ONNX_FILE: Final = "forest.onnx"


class NotCompilableError(ValueError):
    """The pipeline cannot be compiled into a form with exactly the same predictions."""


@dataclass(frozen=True)
class Encoding:
    """How the pipeline's encode step lays out its columns: one-hot categories, then numbers."""

    categories: tuple[tuple[str, ...], ...]  # per categorical column, in schema order
    numeric: tuple[str, ...]  # the passthrough columns after the one-hot block

    @property
    def width(self) -> int:
        return sum(len(c) for c in self.categories) + len(self.numeric)

    def transform(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The float32 matrix the trees see, with numpy and dict look-ups only.

        The pipeline's pandas/ColumnTransformer path costs ~7 ms a call whatever the row
        count; this one ~0.1 ms for one record, which is most of what a single-record
        request costs once the trees are compiled.
        """
        missing = [c for c in schema.FEATURE_COLUMNS if c not in frame.columns]
        if missing:
            raise KeyError(f"missing feature column(s): {', '.join(missing)}")
        rows = len(frame)
        out = np.zeros((rows, self.width), dtype=np.float32)
        offset = 0
        positions = np.arange(rows)
        for column, lookup in zip(schema.CATEGORICAL_COLUMNS, self._lookups(), strict=True):
            values = frame[column].to_numpy()
            codes = np.fromiter((lookup.get(str(v), -1) for v in values), np.int64, rows)
            known = codes >= 0  # unknown values: all zeros, as handle_unknown="ignore"
            out[positions[known], offset + codes[known]] = 1.0
            offset += len(lookup)
        numeric = {c: frame[c].to_numpy() for c in schema.NUMERIC_COLUMNS}
        derived = dict(zip(DERIVED_COLUMNS, derived_values(numeric), strict=True))
        for column in self.numeric:
            source = derived[column] if column in derived else numeric[column]
            out[:, offset] = np.asarray(source, dtype=np.float64)
            offset += 1
        return out

    def _lookups(self) -> list[dict[str, int]]:
        # Built on first use (the dataclass is frozen and pickled with the model).
        cached: list[dict[str, int]] | None = self.__dict__.get("_lookup_cache")
        if cached is None:
            cached = [{v: i for i, v in enumerate(c)} for c in self.categories]
            object.__setattr__(self, "_lookup_cache", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lookup_cache"}


def encoding_of(pipeline: Any) -> Encoding:
    """The layout of a fitted forest pipeline (pipelines._one_hot_encoding), or refuse."""
    encode = pipeline.named_steps.get("encode")
    if encode is None or len(encode.transformers_) < 1:
        raise NotCompilableError("the pipeline has no fitted encode step")
    name, encoder, columns = encode.transformers_[0]
    if type(encoder).__name__ != "OneHotEncoder" or list(columns) != list(
        schema.CATEGORICAL_COLUMNS
    ):
        raise NotCompilableError(f"the encode step is not a one-hot of the categories ({name})")
    categories = tuple(tuple(str(v) for v in c) for c in encoder.categories_)
    names = [str(n) for n in encode.get_feature_names_out()]
    n_onehot = sum(len(c) for c in categories)
    return Encoding(categories=categories, numeric=tuple(names[n_onehot:]))


def _threshold_below(thresholds: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    as32 = thresholds.astype(np.float32)
    up = as32.astype(np.float64) > thresholds
    as32[up] = np.nextafter(as32[up], np.float32(-np.inf))
    return as32


def forest_to_onnx(forest: Any, n_features: int) -> bytes:
    """One ai.onnx.ml TreeEnsemble (opset 5) summing one vote per tree into n_classes outputs."""
    builder = TreeEnsembleBuilder(np.float32)
    for tree in (e.tree_ for e in forest.estimators_):
        is_leaf = tree.children_left == -1
        values = tree.value[:, 0, :]
        if np.any((values[is_leaf] > 0).sum(axis=1) != 1):
            raise NotCompilableError("a tree has an impure leaf; its vote is not one class")
        votes = np.argmax(values[is_leaf], axis=1)
        builder.add_tree(
            is_leaf=is_leaf,
            left=tree.children_left,
            right=tree.children_right,
            feature=tree.feature,
            threshold=_threshold_below(tree.threshold),
            leaf_targets=votes,
            leaf_weights=np.ones(votes.size),
        )
    return builder.to_onnx(
        n_features=n_features,
        n_targets=len(forest.classes_),
        output="votes",
        graph="forest",
        producer="forest_mlops.serving.compiled",
    )


def model_threads() -> int:
    """Threads for one predict call: FOREST_MODEL_THREADS, else 2 (the platform's pod size)."""
    value = os.environ.get("FOREST_MODEL_THREADS", "2")
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"FOREST_MODEL_THREADS must be a whole number, got {value!r}") from None
    if threads < 1:
        raise ValueError(f"FOREST_MODEL_THREADS must be at least 1, got {threads}")
    return threads


class CompiledForest:
    """Predicts like the fitted pipeline from (encoding, ONNX bytes); what serving holds."""

    def __init__(
        self,
        encoding: Encoding,
        classes: Sequence[int],
        n_trees: int,
        onnx_bytes: bytes,
        *,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.encoding = encoding
        self.classes_ = np.asarray(classes)
        self.n_trees = n_trees
        options = ort.SessionOptions()
        # ONNX Runtime's tree kernel runs one record (or a few) on one thread and splits large
        # batches across `threads`; its threads must not spin while idle, or they steal the CPU
        # the HTTP side of the service needs between batches.
        options.intra_op_num_threads = threads if threads is not None else model_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            onnx_bytes, options, providers=["CPUExecutionProvider"]
        )

    def votes(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        matrix = self.encoding.transform(frame)
        return np.asarray(self._session.run(None, {"X": matrix})[0])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        # The mean of one-hot votes: sklearn's predict_proba of a forest with pure leaves.
        return self.votes(frame).astype(np.float64) / self.n_trees

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return np.asarray(self.classes_[np.argmax(self.votes(frame), axis=1)])


def compile_pipeline(pipeline: Any, check_rows: pd.DataFrame) -> tuple[CompiledForest, bytes]:
    """Compile a fitted forest pipeline; refuse unless it predicts the same on `check_rows`."""
    forest = pipeline.named_steps["model"]
    if not hasattr(forest, "estimators_") or not hasattr(forest.estimators_[0], "tree_"):
        raise NotCompilableError(f"{type(forest).__name__} is not a forest of decision trees")
    encoding = encoding_of(pipeline)
    if encoding.width != forest.n_features_in_:
        raise NotCompilableError(
            f"the encoding builds {encoding.width} columns, the forest expects "
            f"{forest.n_features_in_}"
        )
    onnx_bytes = forest_to_onnx(forest, encoding.width)
    compiled = CompiledForest(encoding, list(forest.classes_), len(forest.estimators_), onnx_bytes)
    features = check_rows.loc[:, list(schema.FEATURE_COLUMNS)]
    expected = np.asarray(pipeline.predict(features))
    got = compiled.predict(features)
    differ = int(np.sum(expected != got))
    if differ:
        raise NotCompilableError(
            f"the compiled forest predicts a different class for {differ} of {len(features)} rows"
        )
    return compiled, onnx_bytes
