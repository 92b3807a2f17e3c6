"""Terrain features derived from the raw record, computed inside the model pipeline.

Tree ensembles split on one feature at a time, so relations between two columns (how far above
the nearest water a cell is, how the three distances combine) take many splits to approximate.
Giving those sums, differences and the straight-line distance to water as features is the
classic Covertype feature set; on the 75k dev sample it adds about three points of accuracy to
the forests (bench/training.py). The transformer is stateless, so it learns nothing from the
training rows and the served model computes exactly what training computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from forest_mlops import schema, terrain
from forest_mlops.terrain import DERIVED_COLUMNS, derived_values

# The formulas live in forest_mlops.terrain (no scikit-learn), which the compiled serving form
# imports too; this module wraps them in the pipeline's scikit-learn step.
_INPUTS = (terrain.HDH, terrain.VDH, terrain.ROAD, terrain.FIRE, "Elevation")


def derive(frame: pd.DataFrame) -> pd.DataFrame:
    """The derived columns (float64) for a frame holding the numeric feature columns."""
    columns = {c: frame[c].to_numpy() for c in _INPUTS}
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
