"""The Forest Cover Type record: columns, category codes, class names and value bounds.

This module is the single source of truth for the 13-column course layout. The data API,
ingestion, training, inference and the tests all import these names instead of restating them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

# Numeric features, in the course CSV's order, with the physical bounds a value may take.
# Bounds are wider than the UCI data's observed range (e.g. Elevation 1859..3858) so that
# plausible new terrain is accepted, but narrow enough to catch unit mix-ups and typos.
NUMERIC_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "Elevation": (0, 9000),  # metres; higher than any point on Earth is a typo
    "Aspect": (0, 360),  # degrees azimuth
    "Slope": (0, 90),  # degrees
    "Horizontal_Distance_To_Hydrology": (0, 20000),  # metres
    "Vertical_Distance_To_Hydrology": (-2000, 2000),  # metres, negative = below water
    "Horizontal_Distance_To_Roadways": (0, 20000),
    "Hillshade_9am": (0, 255),  # 0-255 index
    "Hillshade_Noon": (0, 255),
    "Hillshade_3pm": (0, 255),
    "Horizontal_Distance_To_Fire_Points": (0, 20000),
}
NUMERIC_COLUMNS: Final[tuple[str, ...]] = tuple(NUMERIC_BOUNDS)

WILDERNESS_COLUMN: Final = "Wilderness_Area"
SOIL_COLUMN: Final = "Soil_Type"
TARGET_COLUMN: Final = "Cover_Type"
CATEGORICAL_COLUMNS: Final[tuple[str, ...]] = (WILDERNESS_COLUMN, SOIL_COLUMN)

# The 12 model inputs, then the 13-column course layout (features + target).
FEATURE_COLUMNS: Final[tuple[str, ...]] = (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS)
COLUMNS: Final[tuple[str, ...]] = (*FEATURE_COLUMNS, TARGET_COLUMN)

# Wilderness areas in the order of the UCI one-hot columns 1..4, spelled as the course data
# spells them ("Commanche" is the course's spelling of Comanche Peak).
WILDERNESS_AREAS: Final[tuple[str, ...]] = ("Rawah", "Neota", "Commanche", "Cache")
# Accepted on input (inference), normalised to the course spelling before the model sees it.
WILDERNESS_ALIASES: Final[dict[str, str]] = {"Comanche": "Commanche"}

# USFS Ecological Landtype Unit codes of the 40 soil types, in the order of the UCI one-hot
# soil columns 1..40, written with the course's "C" prefix.
SOIL_ELU_CODES: Final[tuple[int, ...]] = (
    2702, 2703, 2704, 2705, 2706, 2717, 3501, 3502, 4201, 4703,
    4704, 4744, 4758, 5101, 5151, 6101, 6102, 6731, 7101, 7102,
    7103, 7201, 7202, 7700, 7701, 7702, 7709, 7710, 7745, 7746,
    7755, 7756, 7757, 7790, 8703, 8707, 8708, 8771, 8772, 8776,
)  # fmt: skip
SOIL_TYPES: Final[tuple[str, ...]] = tuple(f"C{code}" for code in SOIL_ELU_CODES)

# Class ids 0..6 (UCI classes 1..7 minus one) and their names.
COVER_TYPE_NAMES: Final[tuple[str, ...]] = (
    "Spruce/Fir",
    "Lodgepole Pine",
    "Ponderosa Pine",
    "Cottonwood/Willow",
    "Aspen",
    "Douglas-fir",
    "Krummholz",
)
COVER_TYPES: Final[tuple[int, ...]] = tuple(range(len(COVER_TYPE_NAMES)))

_DECIMAL: Final = re.compile(r"(?P<integer>[+-]?[0-9]{1,18})(?P<fraction>\.[0-9]{0,18})?", re.ASCII)
_WILDERNESS_SET: Final = frozenset(WILDERNESS_AREAS)
_SOIL_SET: Final = frozenset(SOIL_TYPES)

# A typed record: 10 ints, two category strings and (for labelled rows) the class id.
Record = tuple[int, int, int, int, int, int, int, int, int, int, str, str, int]


class RecordError(ValueError):
    """A row that does not fit the schema; the message says which column and why."""


def parse_int(column: str, raw: object) -> int:
    """Parse one integer field, accepting ints and integral strings/floats ("12", "12.0")."""
    if isinstance(raw, bool):
        raise RecordError(f"{column}: expected an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise RecordError(f"{column}: expected an integer, got {raw!r}")
    if isinstance(raw, str):
        text = raw.strip()
        # Plain ASCII decimals of sane length only: int()/float() would also take "1e3", "1_0"
        # and non-ASCII digits, and int() raises ValueError past 4300 digits.
        match = _DECIMAL.fullmatch(text)
        if match is None:
            raise RecordError(f"{column}: not a number: {raw!r}")
        if (match.group("fraction") or "").strip(".0"):
            raise RecordError(f"{column}: expected an integer, got {raw!r}")
        return int(match.group("integer"))
    raise RecordError(f"{column}: expected an integer, got {type(raw).__name__}")


def check_numeric(column: str, value: int) -> int:
    low, high = NUMERIC_BOUNDS[column]
    if not low <= value <= high:
        raise RecordError(f"{column}: {value} is outside {low}..{high}")
    return value


def normalise_wilderness(raw: object) -> str:
    if not isinstance(raw, str):
        raise RecordError(f"{WILDERNESS_COLUMN}: expected a name, got {raw!r}")
    name = WILDERNESS_ALIASES.get(raw.strip(), raw.strip())
    if name not in _WILDERNESS_SET:
        allowed = ", ".join(WILDERNESS_AREAS)
        raise RecordError(f"{WILDERNESS_COLUMN}: unknown area {raw!r} (expected one of {allowed})")
    return name


def check_soil(raw: object) -> str:
    if not isinstance(raw, str) or raw.strip() not in _SOIL_SET:
        raise RecordError(
            f"{SOIL_COLUMN}: unknown soil code {raw!r} (expected one of the 40 ELU codes "
            f"{SOIL_TYPES[0]}..{SOIL_TYPES[-1]})"
        )
    return raw.strip()


def check_cover_type(raw: object) -> int:
    value = parse_int(TARGET_COLUMN, raw)
    if value not in COVER_TYPES:
        raise RecordError(f"{TARGET_COLUMN}: {value} is not a class id 0..{COVER_TYPES[-1]}")
    return value


def parse_features(values: Sequence[object]) -> tuple[object, ...]:
    """Validate the 12 feature values (course order) and return them typed."""
    if len(values) != len(FEATURE_COLUMNS):
        raise RecordError(f"expected {len(FEATURE_COLUMNS)} feature values, got {len(values)}")
    numeric = tuple(
        check_numeric(column, parse_int(column, raw))
        for column, raw in zip(NUMERIC_COLUMNS, values, strict=False)
    )
    return (*numeric, normalise_wilderness(values[10]), check_soil(values[11]))


def parse_record(values: Sequence[object]) -> Record:
    """Validate one 13-value row in the course layout and return it typed.

    Raises RecordError naming the first offending column.
    """
    if len(values) != len(COLUMNS):
        raise RecordError(f"expected {len(COLUMNS)} values, got {len(values)}")
    features = parse_features(values[:12])
    return (*features, check_cover_type(values[12]))  # type: ignore[return-value]


def record_from_mapping(
    record: Mapping[str, object], *, labelled: bool = False
) -> tuple[object, ...]:
    """Validate a record given by column name (unknown or missing names are errors)."""
    expected = COLUMNS if labelled else FEATURE_COLUMNS
    missing = [c for c in expected if c not in record]
    unknown = [k for k in record if k not in expected]
    if missing:
        raise RecordError(f"missing field(s): {', '.join(missing)}")
    if unknown:
        raise RecordError(f"unknown field(s): {', '.join(map(str, unknown))}")
    values = [record[c] for c in expected]
    return parse_record(values) if labelled else parse_features(values)


@dataclass(frozen=True)
class CoverType:
    id: int
    name: str


def cover_type(class_id: int) -> CoverType:
    return CoverType(class_id, COVER_TYPE_NAMES[class_id])
