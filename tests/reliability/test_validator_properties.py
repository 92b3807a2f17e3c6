"""Property tests of the record validator (forest_mlops.schema) beyond tests/test_schema.py.

tests/test_schema.py has the hand-written cases and the in-bounds string round trip. Here:
any value of any type gives a typed record or RecordError, never another exception; every valid
record is accepted in each spelling the course data and JSON clients use; typing is idempotent;
the mapping form agrees with the positional form whatever the key order.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from forest_mlops import schema

PROPERTY_SETTINGS = settings(max_examples=200, derandomize=True, deadline=None, database=None)

anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.text(alphabet="0123456789.-+eE _ \t\u0660\u0661\uff11", max_size=12)
    | st.binary(max_size=10)
    | st.sampled_from([*schema.WILDERNESS_AREAS, *schema.SOIL_TYPES, "Comanche", "C0000"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


@PROPERTY_SETTINGS
@given(values=st.lists(anything, min_size=0, max_size=15))
def test_parse_record_raises_only_record_error(values: list[Any]) -> None:
    try:
        record = schema.parse_record(values)
    except schema.RecordError as exc:
        assert str(exc)  # the message says what is wrong
    else:
        assert len(record) == 13


@PROPERTY_SETTINGS
@given(
    mapping=st.dictionaries(
        st.sampled_from(schema.COLUMNS) | st.text(max_size=10) | st.integers(),
        anything,
        max_size=15,
    ),
    labelled=st.booleans(),
)
def test_record_from_mapping_raises_only_record_error(
    mapping: dict[Any, Any], labelled: bool
) -> None:
    try:
        record = schema.record_from_mapping(mapping, labelled=labelled)
    except schema.RecordError as exc:
        assert str(exc)
    else:
        assert len(record) == (13 if labelled else 12)


def spellings(value: int) -> st.SearchStrategy[object]:
    """The ways a valid integer arrives: int, str (course CSV), padded, "N.0", float (JSON)."""
    return st.sampled_from([value, str(value), f" {value} ", f"{value}.0", float(value)])


@st.composite
def valid_rows(draw: st.DrawFn) -> tuple[list[object], tuple[object, ...]]:
    numbers = [draw(st.integers(low, high)) for low, high in schema.NUMERIC_BOUNDS.values()]
    area = draw(st.sampled_from([*schema.WILDERNESS_AREAS, *schema.WILDERNESS_ALIASES]))
    soil = draw(st.sampled_from(schema.SOIL_TYPES))
    label = draw(st.sampled_from(schema.COVER_TYPES))
    raw = [draw(spellings(n)) for n in numbers]
    raw += [draw(st.sampled_from([area, f" {area}"])), soil, draw(spellings(label))]
    expected = (*numbers, schema.WILDERNESS_ALIASES.get(area, area), soil, label)
    return raw, expected


@PROPERTY_SETTINGS
@given(row=valid_rows())
def test_every_valid_record_is_accepted_in_every_spelling(
    row: tuple[list[object], tuple[object, ...]],
) -> None:
    raw, expected = row
    record = schema.parse_record(raw)
    assert record == expected
    assert all(type(v) is int for v in record[:10]) and type(record[12]) is int
    # Typing is idempotent: the typed record, and its text form, parse to themselves.
    assert schema.parse_record(list(record)) == record
    assert schema.parse_record([str(v) for v in record]) == record


@PROPERTY_SETTINGS
@given(row=valid_rows(), order=st.randoms(use_true_random=False))
def test_mapping_form_agrees_with_the_positional_form(
    row: tuple[list[object], tuple[object, ...]], order: Any
) -> None:
    raw, expected = row
    items = list(zip(schema.COLUMNS, raw, strict=True))
    order.shuffle(items)
    assert schema.record_from_mapping(dict(items), labelled=True) == expected
    features = {k: v for k, v in items if k != schema.TARGET_COLUMN}
    assert schema.record_from_mapping(features) == expected[:12]


@PROPERTY_SETTINGS
@given(row=valid_rows(), column=st.integers(0, 9), delta=st.integers(1, 10**6))
def test_a_value_outside_its_bounds_names_its_column(
    row: tuple[list[object], tuple[object, ...]], column: int, delta: int
) -> None:
    raw, _ = row
    name = schema.NUMERIC_COLUMNS[column]
    low, high = schema.NUMERIC_BOUNDS[name]
    for outside in (low - delta, high + delta):
        bad = list(raw)
        bad[column] = str(outside)
        try:
            schema.parse_record(bad)
        except schema.RecordError as exc:
            assert str(exc).startswith(f"{name}: {outside} is outside {low}..{high}")
        else:
            raise AssertionError(f"{name}={outside} was accepted")
