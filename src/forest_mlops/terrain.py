"""The terrain features derived from the raw record: the formulas, without scikit-learn.

The training pipeline's first step (forest_mlops.training.features.TerrainFeatures) and the
compiled serving form (forest_mlops.serving.compiled) compute them from this one place. Kept
apart from the scikit-learn step so that serving the compiled model needs only numpy: the
inference image has no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np

HDH: Final = "Horizontal_Distance_To_Hydrology"
VDH: Final = "Vertical_Distance_To_Hydrology"
ROAD: Final = "Horizontal_Distance_To_Roadways"
FIRE: Final = "Horizontal_Distance_To_Fire_Points"

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

    One formula for the pipeline (forest_mlops.training.features) and for the compiled serving
    form (forest_mlops.serving.compiled), which must compute exactly the same numbers.
    """
    hdh = np.asarray(columns[HDH], dtype=np.float64)
    vdh = np.asarray(columns[VDH], dtype=np.float64)
    road = np.asarray(columns[ROAD], dtype=np.float64)
    fire = np.asarray(columns[FIRE], dtype=np.float64)
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
