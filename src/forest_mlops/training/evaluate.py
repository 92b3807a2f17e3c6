"""Scores of a fitted pipeline on labelled rows, and the pictures and tables that explain them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.inspection import permutation_importance
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from forest_mlops import schema
from forest_mlops.training.threads import limited_threads

LABELS: Final = list(schema.COVER_TYPES)
# Permutation importance (for estimators without impurity importances) on at most this many
# validation rows, a few repeats: enough to rank features, cheap next to the fit.
PERMUTATION_ROWS: Final = 2000
PERMUTATION_REPEATS: Final = 3


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    per_class_f1: dict[int, float]
    confusion: np.ndarray  # rows: true class id, columns: predicted class id
    rows: int

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Flat MLflow metric names, e.g. `test_accuracy`, `test_f1_class_3`."""
        metrics = {f"{prefix}_accuracy": self.accuracy, f"{prefix}_macro_f1": self.macro_f1}
        for class_id, value in self.per_class_f1.items():
            metrics[f"{prefix}_f1_class_{class_id}"] = value
        return metrics


def features_and_target(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The model input (12 feature columns) and the class ids of a labelled frame."""
    return frame.loc[:, list(schema.FEATURE_COLUMNS)], frame[schema.TARGET_COLUMN].to_numpy()


def score_predictions(y_true: np.ndarray, y_pred: np.ndarray) -> Scores:
    if len(y_true) == 0:
        raise ValueError("cannot score a model on zero rows")
    per_class = f1_score(y_true, y_pred, labels=LABELS, average=None, zero_division=0)
    # Macro-F1 over the classes present in the rows (as true or predicted): a class missing
    # from a small test part must not count as a zero.
    return Scores(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        per_class_f1={c: float(v) for c, v in zip(LABELS, per_class, strict=True)},
        confusion=confusion_matrix(y_true, y_pred, labels=LABELS),
        rows=len(y_true),
    )


def score(model: Any, frame: pd.DataFrame) -> Scores:
    """Scores of any model with `predict(DataFrame)` (a Pipeline or an MLflow pyfunc model)."""
    features, target = features_and_target(frame)
    # One OpenMP thread: scoring is short, and threads only add barrier waits when the
    # process shares its CPUs (training.threads).
    with limited_threads(1):
        predicted = np.asarray(model.predict(features)).astype(np.int64)
    return score_predictions(target, predicted)


def confusion_figure(scores: Scores, title: str) -> Figure:
    """The confusion matrix as a figure (no pyplot: safe in worker threads, Agg canvas)."""
    figure = Figure(figsize=(7.5, 6.5), layout="constrained")
    axes = figure.subplots()
    counts = scores.confusion
    totals = counts.sum(axis=1, keepdims=True)
    recall = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    image = axes.imshow(recall, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class")
    names = [f"{i} {name}" for i, name in enumerate(schema.COVER_TYPE_NAMES)]
    axes.set_xticks(range(len(names)), names, rotation=40, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"{title}\naccuracy {scores.accuracy:.4f}, macro-F1 {scores.macro_f1:.4f}")
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if recall[row, column] > 0.5 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    return figure


def feature_importances(
    pipeline: Any, validation: pd.DataFrame, *, seed: int = 0
) -> tuple[dict[str, float], str]:
    """Importance of each pipeline input feature and the method used.

    Forests expose impurity importances over the encoded columns; the one-hot columns of a
    category are summed back into that category so that the names are the model's inputs
    (12 raw + the derived terrain features). HistGradientBoosting has none, so it gets
    permutation importance of the 12 raw columns on validation rows (macro-F1 drop).
    """
    model = pipeline.named_steps["model"]
    if hasattr(model, "feature_importances_"):
        encoded = pipeline.named_steps["encode"].get_feature_names_out()
        totals: dict[str, float] = {}
        for name, value in zip(encoded, model.feature_importances_, strict=True):
            totals[_source_column(str(name))] = totals.get(_source_column(str(name)), 0.0) + float(
                value
            )
        return _sorted(totals), "impurity"
    sample = validation.sample(n=min(len(validation), PERMUTATION_ROWS), random_state=seed)
    features, target = features_and_target(sample)
    with limited_threads(1):
        result = permutation_importance(
            pipeline,
            features,
            target,
            scoring="f1_macro",
            n_repeats=PERMUTATION_REPEATS,
            random_state=seed,
            n_jobs=1,
        )
    means = result["importances_mean"]
    return _sorted(dict(zip(features.columns, map(float, means), strict=True))), "permutation"


def _source_column(encoded_name: str) -> str:
    for column in schema.CATEGORICAL_COLUMNS:
        if encoded_name.startswith(f"{column}_"):
            return column
    return encoded_name


def _sorted(values: Mapping[str, float]) -> dict[str, float]:
    return dict(sorted(values.items(), key=lambda item: item[1], reverse=True))


def importance_figure(importances: Mapping[str, float], method: str, title: str) -> Figure:
    figure = Figure(figsize=(7.0, 0.3 * len(importances) + 1.5), layout="constrained")
    axes = figure.subplots()
    names = list(importances)[::-1]
    axes.barh(names, [importances[n] for n in names], color="#2f6f4f")
    axes.set_xlabel("impurity decrease" if method == "impurity" else "macro-F1 drop when shuffled")
    axes.set_title(title)
    return figure
