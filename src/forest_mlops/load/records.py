"""The records the load test posts (standard library only, no Locust: the tests import it).

FOREST_LOAD_RECORDS names a JSON-lines file of feature records (real rows: the tests use the
dev sample); without it the records are drawn with a fixed seed from the value ranges the UCI
data actually holds and its 4 wilderness areas and 40 soil codes: every field valid and within
real terrain, though the combinations are not real rows (the load image ships no dataset).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from forest_mlops import schema

# The smallest and largest value of each numeric column in the UCI Covertype data (581,012 rows;
# schema.NUMERIC_BOUNDS are wider on purpose: they accept plausible new terrain).
OBSERVED_RANGES: dict[str, tuple[int, int]] = {
    "Elevation": (1859, 3858),
    "Aspect": (0, 360),
    "Slope": (0, 66),
    "Horizontal_Distance_To_Hydrology": (0, 1397),
    "Vertical_Distance_To_Hydrology": (-173, 601),
    "Horizontal_Distance_To_Roadways": (0, 7117),
    "Hillshade_9am": (0, 254),
    "Hillshade_Noon": (0, 254),
    "Hillshade_3pm": (0, 254),
    "Horizontal_Distance_To_Fire_Points": (0, 7173),
}
RECORDS_ENV = "FOREST_LOAD_RECORDS"
GENERATED = 1000
SEED = 20261205


def generated_records(count: int = GENERATED, seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            **{c: rng.randint(*OBSERVED_RANGES[c]) for c in schema.NUMERIC_COLUMNS},
            schema.WILDERNESS_COLUMN: rng.choice(schema.WILDERNESS_AREAS),
            schema.SOIL_COLUMN: rng.choice(schema.SOIL_TYPES),
        }
        for _ in range(count)
    ]


def load() -> list[dict[str, Any]]:
    path = os.environ.get(RECORDS_ENV)
    return records_from(Path(path)) if path else generated_records()


def records_from(path: Path) -> list[dict[str, Any]]:
    """Feature records of a JSON-lines file (a Cover_Type field, if present, is dropped)."""
    found = []
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            record.pop(schema.TARGET_COLUMN, None)
            found.append(record)
    if not found:
        raise SystemExit(f"{RECORDS_ENV}={path} holds no record")
    return found
