"""Terrain features derived from the raw record, computed inside the model pipeline.

Tree ensembles split on one feature at a time, so relations between two columns (how far above
the nearest water a cell is, how the three distances combine) take many splits to approximate.
Giving those sums, differences and the straight-line distance to water as features is the
classic Covertype feature set; on the 75k dev sample it adds about three points of accuracy to
the forests (bench/training.py). The transformer is stateless, so it learns nothing from the
training rows and the served model computes exactly what training computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from forest_mlops import schema

_HDH: Final = "Horizontal_Distance_To_Hydrology"
_VDH: Final = "Vertical_Distance_To_Hydrology"
_ROAD: Final = "Horizontal_Distance_To_Roadways"
_FIRE: Final = "Horizontal_Distance_To_Fire_Points"

DERIVED_COLUMNS: Final[tuple[str, ...]] = (
    "Distance_To_Hydrology",
    "Elevation_Above_Hydrology",
    "Elevation_Minus_Hydrology_Reach",
    "Hydrology_Plus_Fire",
    "Hydrology_Minus_Fire",
    "Hydrology_Plus_Road",
    "Hydrology_Minus_Road",
    "Fire_Plus_Road",
    "Fire_Minus_Road",
)


def derived_values(
    columns: Mapping[str, np.ndarray[Any, Any]],
) -> tuple[np.ndarray[Any, Any], ...]:
    """DERIVED_COLUMNS' values (float64, in order) from the numeric feature columns' arrays.

    One formula for the pipeline (derive) and for the compiled serving form
    (forest_mlops.serving.compiled), which must compute exactly the same numbers.
    """
    hdh = np.asarray(columns[_HDH], dtype=np.float64)
    vdh = np.asarray(columns[_VDH], dtype=np.float64)
    road = np.asarray(columns[_ROAD], dtype=np.float64)
    fire = np.asarray(columns[_FIRE], dtype=np.float64)
    elevation = np.asarray(columns["Elevation"], dtype=np.float64)
    return (
        np.hypot(hdh, vdh),
        elevation - vdh,
        # 0.2 is roughly the slope of the terrain toward water in this data.
        elevation - 0.2 * hdh,
        hdh + fire,
        hdh - fire,
        hdh + road,
        hdh - road,
        fire + road,
        fire - road,
    )


def derive(frame: pd.DataFrame) -> pd.DataFrame:
    """The derived columns (float64) for a frame holding the numeric feature columns."""
    columns = {c: frame[c].to_numpy() for c in (_HDH, _VDH, _ROAD, _FIRE, "Elevation")}
    values = derived_values(columns)
    return pd.DataFrame(dict(zip(DERIVED_COLUMNS, values, strict=True)), index=frame.index)


class TerrainFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Select the 12 feature columns by name and append DERIVED_COLUMNS.

    Raises a KeyError naming the missing columns when a feature column is absent, so a
    malformed request fails with a message instead of a shape error deep in the model.
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> TerrainFeatures:
        self._check(X)
        self.n_features_in_ = len(schema.FEATURE_COLUMNS)
        self.feature_names_in_ = np.asarray(schema.FEATURE_COLUMNS, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check(X)
        features = X.loc[:, list(schema.FEATURE_COLUMNS)]
        return pd.concat([features, derive(features)], axis=1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        return np.asarray([*schema.FEATURE_COLUMNS, *DERIVED_COLUMNS], dtype=object)

    @staticmethod
    def _check(X: Any) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame of raw records, got {type(X).__name__}")
        missing = [c for c in schema.FEATURE_COLUMNS if c not in X.columns]
        if missing:
            raise KeyError(f"missing feature column(s): {', '.join(missing)}")
