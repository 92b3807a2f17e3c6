"""Candidate pipelines take raw records (course strings for the categories) and predict ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forest_mlops import schema
from forest_mlops.training import features, pipelines
from forest_mlops.training.pipelines import CandidateSpec
from forest_mlops.training.threads import limited_threads

SMALL = {
    pipelines.RANDOM_FOREST: {"n_estimators": 5, "max_depth": 8},
    pipelines.EXTRA_TREES: {"n_estimators": 5, "max_depth": 8},
    pipelines.HIST_GRADIENT_BOOSTING: {"max_iter": 10, "max_leaf_nodes": 7},
}


@pytest.fixture(scope="module")
def xy(labelled_rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    return labelled_rows[list(schema.FEATURE_COLUMNS)], labelled_rows["Cover_Type"].to_numpy()


@pytest.mark.parametrize("family", pipelines.FAMILIES)
def test_family_predicts_class_ids_from_raw_records(
    family: str, xy: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, y = xy
    pipeline = pipelines.build_pipeline(CandidateSpec(family, SMALL[family]), n_jobs=1)
    with limited_threads(1):
        pipeline.fit(x, y)
    predicted = pipeline.predict(x.head(50))
    assert set(predicted) <= set(schema.COVER_TYPES)
    # predict_proba columns are the class ids in order (the model contract).
    assert list(pipeline.classes_) == sorted(set(y))
    assert pipeline.predict_proba(x.head(5)).shape == (5, len(set(y)))
    # Columns in another order, and an unknown category, are still predicted.
    odd = x.head(3)[list(reversed(schema.FEATURE_COLUMNS))].copy()
    odd.loc[odd.index[0], "Soil_Type"] = "C9999"
    assert len(pipeline.predict(odd)) == 3


def test_missing_column_is_named(xy: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = xy
    pipeline = pipelines.build_pipeline(CandidateSpec(pipelines.EXTRA_TREES, {"n_estimators": 2}))
    pipeline.fit(x, y)
    with pytest.raises(KeyError, match="Slope"):
        pipeline.predict(x.drop(columns=["Slope"]).head(2))


def test_bad_family_or_parameter_fails_before_fitting() -> None:
    with pytest.raises(ValueError, match="unknown model family 'svm'"):
        pipelines.build_pipeline(CandidateSpec("svm"))
    with pytest.raises(ValueError, match="bad parameters for random_forest"):
        pipelines.build_pipeline(CandidateSpec(pipelines.RANDOM_FOREST, {"n_trees": 3}))


def test_derived_terrain_features() -> None:
    row = {c: [0] for c in schema.NUMERIC_COLUMNS}
    row.update(
        Elevation=[3000],
        Horizontal_Distance_To_Hydrology=[30],
        Vertical_Distance_To_Hydrology=[40],
        Horizontal_Distance_To_Roadways=[100],
        Horizontal_Distance_To_Fire_Points=[250],
    )
    derived = features.derive(pd.DataFrame(row)).iloc[0]
    assert derived["Distance_To_Hydrology"] == 50.0
    assert derived["Elevation_Above_Hydrology"] == 2960.0
    assert derived["Elevation_Minus_Hydrology_Reach"] == 2994.0
    assert derived["Hydrology_Minus_Fire"] == -220.0
    assert derived["Fire_Minus_Road"] == 150.0


def test_spec_names_are_stable() -> None:
    spec = CandidateSpec(pipelines.EXTRA_TREES, {"n_estimators": 10, "max_features": 0.5})
    assert spec.name == "extra_trees-max_features=0.5-n_estimators=10"
