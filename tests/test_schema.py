"""forest_mlops.schema: the single source of truth for columns, codes and value checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forest_mlops import schema

VALID = ["2862", "294", "22", "120", "18", "1273", "154", "229", "213", "1323", "Commanche",
         "C7757", "0"]  # fmt: skip


def test_course_layout() -> None:
    assert len(schema.COLUMNS) == 13 and len(schema.FEATURE_COLUMNS) == 12
    assert schema.COLUMNS[:3] == ("Elevation", "Aspect", "Slope")
    assert schema.COLUMNS[-3:] == ("Wilderness_Area", "Soil_Type", "Cover_Type")
    assert schema.COLUMNS[:10] == schema.NUMERIC_COLUMNS
    assert schema.WILDERNESS_AREAS == ("Rawah", "Neota", "Commanche", "Cache")
    assert len(schema.SOIL_TYPES) == len(set(schema.SOIL_TYPES)) == 40
    assert (schema.SOIL_TYPES[0], schema.SOIL_TYPES[-1]) == ("C2702", "C8776")
    assert list(schema.SOIL_ELU_CODES) == sorted(schema.SOIL_ELU_CODES)
    assert schema.COVER_TYPES == (0, 1, 2, 3, 4, 5, 6)
    assert schema.cover_type(1) == schema.CoverType(1, "Lodgepole Pine")


def test_parse_record_types_a_valid_row() -> None:
    record = schema.parse_record(VALID)
    assert record == (2862, 294, 22, 120, 18, 1273, 154, 229, 213, 1323, "Commanche", "C7757", 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12", 12), (" 12 ", 12), ("12.0", 12), (12, 12), (12.0, 12), ("-3", -3), ("+4", 4)],
)
def test_parse_int_accepts_integral_values(raw: object, expected: int) -> None:
    assert schema.parse_int("Slope", raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("x", "Slope: not a number: 'x'"),
        ("", "Slope: not a number: ''"),
        ("1.5", "Slope: expected an integer, got '1.5'"),
        (1.5, "expected an integer"),
        (True, "expected an integer, got True"),
        (None, "expected an integer, got NoneType"),
        ("nan", "Slope: not a number: 'nan'"),
        ("inf", "Slope: not a number: 'inf'"),
        ("1e3", "Slope: not a number: '1e3'"),
        ("1_0", "Slope: not a number: '1_0'"),
        ("\u0661\u0662", "Slope: not a number"),
        ("9" * 5000, "Slope: not a number"),
    ],
)
def test_parse_int_refuses_the_rest(raw: object, message: str) -> None:
    with pytest.raises(schema.RecordError, match=message.replace("(", r"\(")):
        schema.parse_int("Slope", raw)


@pytest.mark.parametrize(("column", "bounds"), schema.NUMERIC_BOUNDS.items())
def test_numeric_bounds_are_inclusive(column: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    assert schema.check_numeric(column, low) == low
    assert schema.check_numeric(column, high) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(schema.RecordError, match=f"{column}: {outside} is outside"):
            schema.check_numeric(column, outside)


def test_categories_and_aliases() -> None:
    assert schema.normalise_wilderness("Comanche") == "Commanche"
    assert schema.normalise_wilderness(" Rawah ") == "Rawah"
    with pytest.raises(schema.RecordError, match="unknown area 'rawah'"):
        schema.normalise_wilderness("rawah")
    with pytest.raises(schema.RecordError, match="expected a name"):
        schema.normalise_wilderness(3)
    assert schema.check_soil("C2702") == "C2702"
    for bad in ("2702", "C2701", "c2702", 2702):
        with pytest.raises(schema.RecordError, match="unknown soil code"):
            schema.check_soil(bad)
    with pytest.raises(schema.RecordError, match=r"7 is not a class id 0\.\.6"):
        schema.check_cover_type("7")


@pytest.mark.parametrize("length", [0, 12, 14])
def test_parse_record_wants_13_values(length: int) -> None:
    with pytest.raises(schema.RecordError, match=f"expected 13 values, got {length}"):
        schema.parse_record((VALID * 2)[:length])


def test_the_first_bad_column_is_named() -> None:
    row = list(VALID)
    row[3], row[11] = "-5", "C0000"
    with pytest.raises(schema.RecordError, match=r"^Horizontal_Distance_To_Hydrology: -5"):
        schema.parse_record(row)


def test_parse_features_and_record_from_mapping() -> None:
    assert schema.parse_features(VALID[:12])[-2:] == ("Commanche", "C7757")
    with pytest.raises(schema.RecordError, match="expected 12 feature values, got 13"):
        schema.parse_features(VALID)
    mapping = dict(zip(schema.COLUMNS, VALID, strict=True))
    assert schema.record_from_mapping(mapping, labelled=True) == schema.parse_record(VALID)
    features = {k: v for k, v in mapping.items() if k != "Cover_Type"}
    assert schema.record_from_mapping(features) == schema.parse_features(VALID[:12])
    with pytest.raises(schema.RecordError, match="unknown field\\(s\\): Cover_Type"):
        schema.record_from_mapping(mapping)
    with pytest.raises(schema.RecordError, match="missing field\\(s\\): Slope"):
        schema.record_from_mapping({k: v for k, v in features.items() if k != "Slope"})


@given(
    numbers=st.tuples(*(st.integers(low, high) for low, high in schema.NUMERIC_BOUNDS.values())),
    area=st.sampled_from(schema.WILDERNESS_AREAS),
    soil=st.sampled_from(schema.SOIL_TYPES),
    label=st.sampled_from(schema.COVER_TYPES),
)
def test_every_in_bounds_row_round_trips_through_strings(
    numbers: tuple[int, ...], area: str, soil: str, label: int
) -> None:
    row = [*map(str, numbers), area, soil, str(label)]
    assert schema.parse_record(row) == (*numbers, area, soil, label)
