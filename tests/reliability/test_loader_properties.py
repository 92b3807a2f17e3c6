"""Property tests of the dataset loader (forest_mlops.dataset) beyond tests/test_dataset.py.

tests/test_dataset.py already generates: any single field changed, a value dropped, arbitrary
bytes spliced in, and hand-written wrong headers, empty files, one bad encoding and one huge
line. Here the remaining classes are generated: headers changed in any way, whole files in
other encodings, huge lines of any length anywhere, whitespace-only and truncated gzip files.
Each must be a DatasetError naming the right line, never another exception.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forest_mlops import schema, synthetic
from forest_mlops.dataset import HEADER, MAX_LINE_LENGTH, DatasetError, load_dataset

PROPERTY_SETTINGS = settings(max_examples=100, derandomize=True, deadline=None, database=None)
GOOD = synthetic.generate_lines(30, seed=8)


def load(content: bytes) -> DatasetError | list[str]:
    """Load `content` from a file; the DatasetError or the lines. Anything else propagates."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        path.write_bytes(content)
        try:
            return load_dataset(path).lines
        except DatasetError as exc:
            assert exc.reason and str(path) in str(exc)
            return exc


def body(header: str, lines: list[str]) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


@st.composite
def changed_headers(draw: st.DrawFn) -> str:
    columns = list(schema.COLUMNS)
    change = draw(st.sampled_from(["rename", "drop", "add", "swap", "case", "space", "quote"]))
    index = draw(st.integers(0, len(columns) - 1))
    if change == "rename":
        columns[index] = draw(
            st.text(min_size=1, max_size=20).filter(lambda t: t != columns[index])
        )
    elif change == "drop":
        del columns[index]
    elif change == "add":
        columns.insert(index, draw(st.text(max_size=10)))
    elif change == "swap":
        other = draw(
            st.integers(0, len(columns) - 1).filter(lambda i: columns[i] != columns[index])
        )
        columns[index], columns[other] = columns[other], columns[index]
    elif change == "case":
        columns[index] = columns[index].swapcase()
    elif change == "space":
        columns[index] = f" {columns[index]}"
    else:
        columns[index] = f'"{columns[index]}"'
    return ",".join(columns)


@PROPERTY_SETTINGS
@given(header=changed_headers())
def test_any_changed_header_is_refused_on_line_1(header: str) -> None:
    outcome = load(body(header, GOOD))
    if header.replace("\r", "") == HEADER:  # a rename to a line break only, e.g.
        return
    assert isinstance(outcome, DatasetError), header
    assert outcome.line in (1, None), outcome


@PROPERTY_SETTINGS
@given(
    encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "cp437"]),
    index=st.integers(0, len(GOOD) - 1),
    accent=st.sampled_from(["é", "ñ", "ü", "ß"]),
)
def test_files_in_other_encodings_are_refused(encoding: str, index: int, accent: str) -> None:
    lines = list(GOOD)
    lines[index] = lines[index].replace("Rawah", f"Rawah{accent}").replace("C", f"C{accent}", 1)
    outcome = load(("\n".join([HEADER, *lines]) + "\n").encode(encoding))
    # Never the rows with the accent: either not UTF-8, or the accented value is refused.
    assert isinstance(outcome, DatasetError), encoding


@PROPERTY_SETTINGS
@given(
    position=st.integers(0, len(GOOD)),
    length=st.integers(MAX_LINE_LENGTH + 1, 200_000),
    char=st.sampled_from(["9", "a", ",", " ", "\t", "é"]),
)
def test_a_huge_line_anywhere_names_its_line(position: int, length: int, char: str) -> None:
    lines = [*GOOD[:position], char * length, *GOOD[position:]]
    outcome = load(body(HEADER, lines))
    assert isinstance(outcome, DatasetError)
    assert outcome.line == position + 2
    assert "characters long" in outcome.reason


@PROPERTY_SETTINGS
@given(blank=st.text(alphabet=" \t\r\n\ufeff", max_size=50), packed=st.booleans())
def test_blank_files_are_refused_as_empty(blank: str, packed: bool) -> None:
    content = blank.encode()
    outcome = load(gzip.compress(content) if packed else content)
    assert isinstance(outcome, DatasetError)
    assert outcome.line in (None, 1)


@PROPERTY_SETTINGS
@given(cut=st.integers(2, 400))
def test_a_truncated_gzip_file_is_refused(cut: int) -> None:
    packed = gzip.compress(body(HEADER, GOOD), mtime=0)
    outcome = load(packed[: len(packed) - cut])
    assert isinstance(outcome, DatasetError)
    assert "gzip" in outcome.reason


@pytest.mark.parametrize("missing", [0, 5, 10, 12])
def test_an_empty_value_in_any_column_is_refused(missing: int) -> None:
    lines = list(GOOD)
    fields = lines[7].split(",")
    fields[missing] = ""
    lines[7] = ",".join(fields)
    outcome = load(body(HEADER, lines))
    assert isinstance(outcome, DatasetError)
    assert outcome.line == 9
    assert outcome.reason.startswith(schema.COLUMNS[missing])
