"""forest_mlops.dataset: the course CSV loader and its validation."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forest_mlops import schema, synthetic
from forest_mlops.dataset import (
    HEADER,
    MAX_LINE_LENGTH,
    Dataset,
    DatasetError,
    is_synthetic,
    load_dataset,
    synthetic_sidecar,
    write_lines,
)

GOOD = synthetic.generate_lines(40, seed=3)


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def body(lines: list[str]) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def test_loads_plain_and_gzip_with_the_same_rows(tmp_path: Path) -> None:
    plain = load_dataset(write(tmp_path, body(GOOD)))
    packed = load_dataset(write(tmp_path, gzip.compress(body(GOOD).encode()), "data.csv.gz"))
    assert plain.lines == packed.lines == GOOD
    assert len(plain) == 40
    assert plain.row(0) == GOOD[0].split(",")
    assert list(plain.iter_rows())[-1] == GOOD[-1].split(",")
    assert plain.synthetic is False


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(body(GOOD).encode()), "data.csv")
    assert load_dataset(path).lines == GOOD


def test_the_real_dev_sample_loads(dev_csv: Path) -> None:
    dataset = load_dataset(dev_csv)
    assert len(dataset) >= 75_000
    frame = dataset.to_frame()
    assert list(frame.columns) == list(schema.COLUMNS)
    assert set(frame[schema.TARGET_COLUMN].unique()) <= set(schema.COVER_TYPES)
    assert str(frame["Elevation"].dtype) == "int64"


@pytest.mark.parametrize("ending", ["\r\n", "\n"])
def test_line_endings_and_missing_final_newline(tmp_path: Path, ending: str) -> None:
    text = ending.join([HEADER, *GOOD])  # no final newline
    assert load_dataset(write(tmp_path, text)).lines == GOOD


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    assert load_dataset(write(tmp_path, "\ufeff" + body(GOOD))).lines == GOOD


def test_non_canonical_but_valid_values_are_kept_as_written(tmp_path: Path) -> None:
    fields = GOOD[0].split(",")
    fields[0] = fields[0] + ".0"
    fields[1] = " " + fields[1]
    line = ",".join(fields)
    dataset = load_dataset(write(tmp_path, body([line, *GOOD[1:]])))
    assert dataset.lines[0] == line


def expect_error(path: Path, line: int | None, reason: str) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    error = caught.value
    assert error.line == line, str(error)
    assert reason in error.reason, str(error)
    where = f"{path}, line {line}: " if line is not None else f"{path}: "
    assert str(error).startswith(where)
    return error


def replaced(index: int, column: int, value: str) -> list[str]:
    lines = list(GOOD)
    fields = lines[index].split(",")
    fields[column] = value
    lines[index] = ",".join(fields)
    return lines


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (0, "abc", "Elevation: not a number: 'abc'"),
        (0, "", "Elevation: not a number: ''"),
        (2, "91", "Slope: 91 is outside 0..90"),
        (4, "-2001", "Vertical_Distance_To_Hydrology: -2001 is outside -2000..2000"),
        (6, "12.5", "Hillshade_9am: expected an integer"),
        (10, "Comanche Peak", "Wilderness_Area: unknown area 'Comanche Peak'"),
        (10, '"Rawah"', "Wilderness_Area: unknown area"),
        (11, "C9999", "Soil_Type: unknown soil code 'C9999'"),
        (11, "7745", "Soil_Type: unknown soil code '7745'"),
        (12, "7", "Cover_Type: 7 is not a class id 0..6"),
        (12, "-1", "Cover_Type: -1 is not a class id"),
    ],
)
def test_a_bad_value_names_its_line_and_column(
    tmp_path: Path, column: int, value: str, reason: str
) -> None:
    expect_error(write(tmp_path, body(replaced(6, column, value))), 8, reason)


def test_out_of_bounds_on_a_canonical_line_is_found_by_the_vectorised_check(
    tmp_path: Path,
) -> None:
    lines = replaced(30, 0, "9001")
    lines = [*lines[:5], lines[5].replace(",", " ,", 1), *lines[6:]]  # one irregular line before
    expect_error(write(tmp_path, body(lines)), 32, "Elevation: 9001 is outside 0..9000")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1,2,3", "expected 13 values, got 3"),
        (GOOD[0] + ",0", "expected 13 values, got 14"),
        ("", "empty line"),
        ("   ", "empty line"),
    ],
)
def test_wrong_field_counts_and_blank_lines(tmp_path: Path, line: str, reason: str) -> None:
    lines = [*GOOD[:3], line, *GOOD[3:]]
    expect_error(write(tmp_path, body(lines)), 5, reason)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (HEADER.lower(), "header column 1 is 'elevation', expected 'Elevation'"),
        (HEADER.replace("Cover_Type", "Class"), "header column 13 is 'Class'"),
        (",".join(schema.FEATURE_COLUMNS), "header has 12 columns"),
        (GOOD[0], "header column 1 is"),  # no header at all
    ],
)
def test_the_header_must_be_exact(tmp_path: Path, header: str, reason: str) -> None:
    expect_error(write(tmp_path, "\n".join([header, *GOOD]) + "\n"), 1, reason)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\n", "empty file"),
        ((HEADER + "\n").encode(), "no data rows after the header"),
        (gzip.compress(b""), "empty file"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip data"),
    ],
)
def test_empty_and_broken_files(tmp_path: Path, content: bytes, reason: str) -> None:
    expect_error(write(tmp_path, content), None, reason)


def test_bad_encoding_names_the_line(tmp_path: Path) -> None:
    content = body(GOOD).encode()
    broken = content.replace(GOOD[2].encode(), GOOD[2].encode() + b"\xe9", 1)
    error = expect_error(write(tmp_path, broken), 4, "not valid UTF-8")
    assert "0xe9" in error.reason


def test_utf16_file_is_refused(tmp_path: Path) -> None:
    expect_error(write(tmp_path, body(GOOD).encode("utf-16")), 1, "not valid UTF-8")


def test_huge_line_is_refused_before_parsing(tmp_path: Path) -> None:
    lines = [*GOOD[:9], "9" * (MAX_LINE_LENGTH * 50), *GOOD[9:]]
    expect_error(write(tmp_path, body(lines)), 11, "characters long")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.csv", None, "file not found")
    expect_error(tmp_path, None, "is a directory")


def test_write_lines_round_trips_and_is_reproducible(tmp_path: Path) -> None:
    first = write_lines(tmp_path / "a.csv.gz", GOOD)
    second = write_lines(tmp_path / "b.csv.gz", GOOD)
    assert first.read_bytes() == second.read_bytes()  # fixed gzip timestamp
    assert load_dataset(first).lines == GOOD
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_is_synthetic_by_sidecar_or_name(tmp_path: Path) -> None:
    real = write(tmp_path, body(GOOD), "covertype.csv")
    assert not is_synthetic(real)
    assert not load_dataset(real).synthetic
    synthetic_sidecar(real).write_text('{"synthetic": true}')
    assert synthetic_sidecar(real).name == "covertype.csv.synthetic.json"
    assert is_synthetic(real)
    assert load_dataset(real).synthetic
    assert is_synthetic(tmp_path / "covertype_SYNTHETIC.csv.gz")


# --- property tests: the loader either returns exactly the rows or raises DatasetError ---

field_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=",\n\r"), max_size=8)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    index=st.integers(0, len(GOOD) - 1),
    column=st.integers(0, 12),
    value=field_text,
)
def test_any_single_field_change_is_accepted_only_if_the_schema_accepts_it(
    tmp_path: Path, index: int, column: int, value: str
) -> None:
    lines = replaced(index, column, value)
    path = write(tmp_path, body(lines))
    try:
        schema.parse_record(lines[index].split(","))
    except schema.RecordError as exc:
        expect_error(path, index + 2, str(exc))
    else:
        if not lines[index].strip():
            return
        assert load_dataset(path).lines == lines


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(noise=st.binary(min_size=0, max_size=300), cut=st.integers(0, 5000))
def test_arbitrary_bytes_never_crash_the_loader(tmp_path: Path, noise: bytes, cut: int) -> None:
    content = body(GOOD).encode()
    content = content[:cut] + noise + content[cut:]
    path = write(tmp_path, content)
    try:
        dataset = load_dataset(path)
    except DatasetError as exc:
        assert exc.reason
    else:
        assert isinstance(dataset, Dataset)
        for row in dataset.iter_rows():
            schema.parse_record(row)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drop=st.integers(0, 12), index=st.integers(0, len(GOOD) - 1))
def test_a_missing_value_is_refused(tmp_path: Path, drop: int, index: int) -> None:
    lines = list(GOOD)
    fields = lines[index].split(",")
    del fields[drop]
    lines[index] = ",".join(fields)
    expect_error(write(tmp_path, body(lines)), index + 2, "expected 13 values, got 12")


TRICKY_NUMBERS = [
    *("+12", "1e3", "1E2", "12.", ".5", "12.0", "0x1f", "1_0", " 7", "7 ", "nan", "inf"),
    *("-0", "00012", "\u0661\u0662", "1e400", "9" * 30, "", "-", "1,5", "1.0000000000000001"),
]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    index=st.integers(0, len(GOOD) - 1),
    column=st.sampled_from([*range(10), 12]),
    value=st.one_of(st.sampled_from(TRICKY_NUMBERS), st.integers(-3000, 30000).map(str)),
)
def test_number_spellings_get_the_schema_verdict(
    tmp_path: Path, index: int, column: int, value: str
) -> None:
    # Both validation paths (the whole-file C parser and the per-line check) must agree with
    # schema.parse_record on every spelling of a number.
    lines = replaced(index, column, value)
    path = write(tmp_path, body(lines))
    try:
        schema.parse_record(lines[index].split(","))
    except schema.RecordError as exc:
        expect_error(path, index + 2, str(exc))
    else:
        assert load_dataset(path).lines == lines
