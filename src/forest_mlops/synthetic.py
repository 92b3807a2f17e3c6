"""Seeded synthetic rows shaped like the Forest Cover Type data, for when no real data is at hand.

The rows follow `forest_mlops.schema` exactly (the course header, codes and bounds) and carry a
learnable structure close to the real data's: the class is drawn with the real class balance,
then elevation, wilderness area, soil and distances are drawn from class-dependent
distributions (overlapping, as in the real data, so no feature decides the class alone).

Anything built from these rows is not a forest measurement: `write_csv` leaves a
`<file>.synthetic.json` sidecar beside the file and `forest_mlops.dataset.is_synthetic` reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from forest_mlops import schema
from forest_mlops.dataset import paused_gc, synthetic_sidecar, write_lines
from forest_mlops.files import write_atomically

GENERATOR_NAME: Final = "forest_mlops.synthetic"
GENERATOR_VERSION: Final = 1

# Class balance of the full UCI data (class ids 0..6).
CLASS_SHARES: Final[tuple[float, ...]] = (0.3646, 0.4876, 0.0615, 0.0047, 0.0163, 0.0299, 0.0354)
# Mean and spread of the elevation (metres) of each class in the real data.
ELEVATION_BY_CLASS: Final[tuple[tuple[float, float], ...]] = (
    (3129, 156),
    (2920, 190),
    (2394, 197),
    (2223, 103),
    (2787, 96),
    (2419, 188),
    (3361, 107),
)
# Share of each wilderness area (schema.WILDERNESS_AREAS order: Rawah, Neota, Commanche,
# Cache) within each class, rounded from the real data.
WILDERNESS_BY_CLASS: Final[tuple[tuple[float, float, float, float], ...]] = (
    (0.45, 0.09, 0.46, 0.00),
    (0.55, 0.03, 0.38, 0.04),
    (0.00, 0.00, 0.41, 0.59),
    (0.00, 0.00, 0.00, 1.00),
    (0.40, 0.00, 0.60, 0.00),
    (0.00, 0.00, 0.47, 0.53),
    (0.30, 0.12, 0.58, 0.00),
)
# Mean distance to roadways and to fire points (metres) per class.
ROADWAYS_BY_CLASS: Final[tuple[float, ...]] = (2600, 2400, 950, 900, 1350, 1050, 2700)
FIRE_POINTS_BY_CLASS: Final[tuple[float, ...]] = (2000, 2150, 900, 850, 1600, 1050, 2050)
# Each class favours a few soils; the structure is fixed (not drawn from the caller's seed)
# so that every seed describes the same synthetic "forest".
_STRUCTURE_SEED: Final = 20_240_611
_SOILS_PER_CLASS: Final = 6
_SOIL_BACKGROUND_WEIGHT: Final = 0.02


def _soil_weights() -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(_STRUCTURE_SEED)
    weights = np.full((len(schema.COVER_TYPES), len(schema.SOIL_TYPES)), _SOIL_BACKGROUND_WEIGHT)
    for class_id in schema.COVER_TYPES:
        favoured = rng.choice(len(schema.SOIL_TYPES), size=_SOILS_PER_CLASS, replace=False)
        weights[class_id, favoured] += rng.dirichlet(np.ones(_SOILS_PER_CLASS)) * 4
    normalised: npt.NDArray[np.float64] = weights / weights.sum(axis=1, keepdims=True)
    return normalised


def _draw_categories(
    rng: np.random.Generator, classes: npt.NDArray[np.int64], shares: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """One category per row, drawn from its class's row of `shares`."""
    cumulative = np.cumsum(shares, axis=1)
    cumulative[:, -1] = 1.0
    draws = rng.random(len(classes))
    picked: npt.NDArray[np.int64] = (draws[:, None] > cumulative[classes]).sum(axis=1)
    return picked


def generate_columns(n_rows: int, seed: int) -> dict[str, npt.NDArray[np.int64]]:
    """The synthetic data as columns: numeric values, category indexes and class ids."""
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    rng = np.random.default_rng(seed)
    classes = rng.choice(len(CLASS_SHARES), size=n_rows, p=np.array(CLASS_SHARES) / 1.0)
    classes = classes.astype(np.int64)

    elevation_mean = np.array([m for m, _ in ELEVATION_BY_CLASS])[classes]
    elevation_sd = np.array([s for _, s in ELEVATION_BY_CLASS])[classes]
    elevation = rng.normal(elevation_mean, elevation_sd)
    aspect = rng.integers(0, 360, size=n_rows).astype(np.float64)
    steep = np.isin(classes, (5, 6)).astype(np.float64)
    slope = rng.gamma(shape=3.0 + steep, scale=4.5, size=n_rows)
    hydro_h = rng.exponential(270.0, size=n_rows)
    hydro_v = 0.17 * hydro_h + rng.normal(0.0, 45.0, size=n_rows)
    roadways = rng.exponential(np.array(ROADWAYS_BY_CLASS)[classes])
    fire = rng.exponential(np.array(FIRE_POINTS_BY_CLASS)[classes])
    # Hillshade follows the slope's orientation: east-facing slopes are lit in the morning.
    facing_east = np.cos(np.radians(aspect - 90.0)) * np.minimum(slope, 45.0) / 45.0
    hill_9am = 212.0 + 40.0 * facing_east + rng.normal(0.0, 12.0, size=n_rows)
    hill_noon = 223.0 - 0.6 * slope + rng.normal(0.0, 12.0, size=n_rows)
    hill_3pm = 142.0 - 60.0 * facing_east + rng.normal(0.0, 20.0, size=n_rows)

    numeric = {
        "Elevation": elevation,
        "Aspect": aspect,
        "Slope": slope,
        "Horizontal_Distance_To_Hydrology": hydro_h,
        "Vertical_Distance_To_Hydrology": hydro_v,
        "Horizontal_Distance_To_Roadways": roadways,
        "Hillshade_9am": hill_9am,
        "Hillshade_Noon": hill_noon,
        "Hillshade_3pm": hill_3pm,
        "Horizontal_Distance_To_Fire_Points": fire,
    }
    columns: dict[str, npt.NDArray[np.int64]] = {}
    for name, values in numeric.items():
        low, high = schema.NUMERIC_BOUNDS[name]
        # Real values stay far inside the schema bounds; clip to the UCI's observed ranges.
        high = min(high, _OBSERVED_MAX.get(name, high))
        columns[name] = np.clip(np.rint(values), low, high).astype(np.int64)
    columns[schema.WILDERNESS_COLUMN] = _draw_categories(
        rng, classes, np.array(WILDERNESS_BY_CLASS, dtype=np.float64)
    )
    columns[schema.SOIL_COLUMN] = _draw_categories(rng, classes, _soil_weights())
    columns[schema.TARGET_COLUMN] = classes
    return columns


_OBSERVED_MAX: Final[dict[str, int]] = {
    "Elevation": 3858,
    "Aspect": 360,
    "Slope": 66,
    "Horizontal_Distance_To_Hydrology": 1397,
    "Vertical_Distance_To_Hydrology": 601,
    "Horizontal_Distance_To_Roadways": 7117,
    "Hillshade_9am": 254,
    "Hillshade_Noon": 254,
    "Hillshade_3pm": 254,
    "Horizontal_Distance_To_Fire_Points": 7173,
}


def _column_strings(columns: dict[str, npt.NDArray[np.int64]]) -> list[list[str]]:
    names = {
        schema.WILDERNESS_COLUMN: schema.WILDERNESS_AREAS,
        schema.SOIL_COLUMN: schema.SOIL_TYPES,
    }
    strings: list[list[str]] = []
    for name in schema.COLUMNS:
        values = columns[name].tolist()
        if name in names:
            strings.append([names[name][index] for index in values])
        else:
            strings.append(list(map(str, values)))
    return strings


def generate_rows(n_rows: int, seed: int) -> list[list[str]]:
    """`n_rows` rows in the course layout, as the 13 strings a CSV line holds."""
    columns = _column_strings(generate_columns(n_rows, seed))
    with paused_gc():
        return [list(row) for row in zip(*columns, strict=True)]


def generate_lines(n_rows: int, seed: int) -> list[str]:
    """The data lines (no header) of a course-layout CSV."""
    columns = _column_strings(generate_columns(n_rows, seed))
    with paused_gc():
        return [",".join(row) for row in zip(*columns, strict=True)]


def write_csv(path: Path | str, n_rows: int, seed: int) -> Path:
    """Write a course-layout CSV (gzip when the name ends in .gz) and its synthetic sidecar.

    The bytes depend only on (n_rows, seed). Both files are written atomically.
    """
    path = write_lines(path, generate_lines(n_rows, seed))
    marker = {
        "synthetic": True,
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "rows": n_rows,
        "note": "generated rows, not forest measurements: label anything trained on them",
    }
    write_atomically(synthetic_sidecar(path), (json.dumps(marker, indent=2) + "\n").encode())
    return path
