"""Load, validate and write dataset files in the course CSV layout (plain or gzip).

The course data API serves the rows of its CSV as strings, so a `Dataset` keeps each data line
as the text of the file, but only after every line has been checked against
`forest_mlops.schema`. A bad file raises `DatasetError` naming the line and the reason.

Validation has a fast path and an exact one with the same verdict. The fast path reads the
whole file with pandas' C parser and checks types, bounds and codes column by column; it only
ever says "all valid". Otherwise the exact path matches each line against a regular expression
of the canonical layout, checks the bounds of those lines in one pass, and sends every other
line to `schema.parse_record`, which accepts it (e.g. "12.0" or " 12") or gives the reason.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from forest_mlops import schema
from forest_mlops.files import write_atomically

if TYPE_CHECKING:
    import pandas as pd

HEADER: Final[str] = ",".join(schema.COLUMNS)
# A canonical line is under 80 characters; anything this long is not a data row (a binary
# file, a missing newline conversion) and is refused before it is split or parsed.
MAX_LINE_LENGTH: Final = 1024
GZIP_MAGIC: Final = b"\x1f\x8b"
SYNTHETIC_SIDECAR_SUFFIX: Final = ".synthetic.json"

# ASCII digits only: \d would also match other scripts' digits, which the C parser refuses.
_CANONICAL_LINE: Final = re.compile(
    ",".join([r"-?\d{1,6}"] * len(schema.NUMERIC_COLUMNS))
    + ",(?:"
    + "|".join(re.escape(name) for name in schema.WILDERNESS_AREAS)
    + "),C(?:"
    + "|".join(str(code) for code in schema.SOIL_ELU_CODES)
    + "),["
    + "".join(str(c) for c in schema.COVER_TYPES)
    + "]",
    re.ASCII,
)


class DatasetError(ValueError):
    """A dataset file that cannot be served; the message names the file, line and reason."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Dataset:
    """The validated data lines of a course-layout file (header excluded), in file order."""

    path: Path
    lines: list[str]
    synthetic: bool

    def __len__(self) -> int:
        return len(self.lines)

    def row(self, index: int) -> list[str]:
        """One row as the 13 strings of the file."""
        return self.lines[index].split(",")

    def iter_rows(self) -> Iterator[list[str]]:
        for line in self.lines:
            yield line.split(",")

    def to_frame(self) -> pd.DataFrame:
        """The rows typed: numeric columns and Cover_Type int64, categories as strings."""
        import pandas as pd

        with paused_gc():
            records = [schema.parse_record(row) for row in self.iter_rows()]
        frame = pd.DataFrame.from_records(records, columns=list(schema.COLUMNS))
        for column in (*schema.NUMERIC_COLUMNS, schema.TARGET_COLUMN):
            frame[column] = frame[column].astype("int64")
        return frame


def synthetic_sidecar(path: Path | str) -> Path:
    """The marker file that says a dataset was generated: `<file>.synthetic.json`."""
    path = Path(path)
    return path.with_name(path.name + SYNTHETIC_SIDECAR_SUFFIX)


def is_synthetic(path: Path | str) -> bool:
    """True when the file was made by `forest_mlops.synthetic` rather than measured.

    The header must stay exactly the course header, so the mark lives beside the file: a
    `<file>.synthetic.json` sidecar (written by `synthetic.write_csv`), or "synthetic" in the
    file name for a copy that lost its sidecar.
    """
    path = Path(path)
    return synthetic_sidecar(path).exists() or "synthetic" in path.name.lower()


def synthetic_metadata(path: Path | str) -> dict[str, object] | None:
    """The sidecar's content (generator, seed, rows), or None without a sidecar object."""
    sidecar = synthetic_sidecar(path)
    if not sidecar.exists():
        return None
    content = json.loads(sidecar.read_text(encoding="utf-8"))
    return content if isinstance(content, dict) else None


def load_dataset(path: Path | str) -> Dataset:
    """Read and validate a course-layout CSV (.csv or gzip, detected by content).

    Raises DatasetError for a missing or unreadable file, a bad encoding, a wrong header, an
    empty file or the first bad data line (with its 1-based line number in the file).
    """
    path = Path(path)
    text = _decode(path, _read_bytes(path))
    if not text.strip():
        raise DatasetError(path, "empty file: expected the course header and data rows")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the file's final newline
    with paused_gc():
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        _check_line_lengths(path, lines)
        header, data = lines[0], lines[1:]
        if header != HEADER:
            raise DatasetError(path, _header_reason(header), line=1)
        if not data:
            raise DatasetError(path, "no data rows after the header")
        _validate_rows(path, data)
    return Dataset(path=path, lines=data, synthetic=is_synthetic(path))


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except IsADirectoryError:
        raise DatasetError(path, "is a directory, expected a CSV file") from None
    except OSError as exc:
        raise DatasetError(path, f"cannot read: {exc.strerror or exc}") from None
    if raw.startswith(GZIP_MAGIC):
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(path, f"corrupt gzip data: {exc}") from None
    return raw


def _decode(path: Path, raw: bytes) -> str:
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the header.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            path, f"not valid UTF-8 text (byte {raw[exc.start]:#04x}): {exc.reason}", line=line
        ) from None


def _check_line_lengths(path: Path, lines: list[str]) -> None:
    if max(map(len, lines)) <= MAX_LINE_LENGTH:
        return
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_LENGTH:
            raise DatasetError(
                path,
                f"line is {len(line)} characters long, more than {MAX_LINE_LENGTH}: "
                "not a row of the course layout",
                line=number,
            )


def _header_reason(header: str) -> str:
    found = header.split(",")
    if len(found) != len(schema.COLUMNS):
        return (
            f"header has {len(found)} columns, expected the {len(schema.COLUMNS)} course "
            f"columns: {HEADER}"
        )
    for position, (got, want) in enumerate(zip(found, schema.COLUMNS, strict=True), start=1):
        if got != want:
            return f"header column {position} is {got!r}, expected {want!r} (header: {HEADER})"
    return f"header must be exactly: {HEADER}"  # pragma: no cover - differs only if equal


def _validate_rows(path: Path, data: list[str]) -> None:
    if _all_canonical(data):
        return
    _validate_rows_exactly(path, data)


def _all_canonical(data: list[str]) -> bool:
    """True when the C CSV parser reads every line as 13 in-bounds, known values.

    Only a yes is trusted: every value this accepts, `schema.parse_record` accepts too. A no
    (any parse error, an odd value, a stray quote or carriage return) means "look closer".
    """
    import pandas as pd

    # Integer columns are inferred, not forced: forcing int64 would cast "1e400" or "nan"
    # through float (platform-dependent garbage); an inferred int64 column holds integer
    # literals only.
    dtypes: dict[str, Any] = {column: "category" for column in schema.CATEGORICAL_COLUMNS}
    integer_columns = [*schema.NUMERIC_COLUMNS, schema.TARGET_COLUMN]
    try:
        frame = pd.read_csv(
            io.StringIO("\n".join(data)),
            header=None,
            names=list(schema.COLUMNS),
            dtype=dtypes,
            engine="c",
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=False,
        )
    except (ValueError, OverflowError, TypeError, pd.errors.ParserError):
        return False
    if len(frame) != len(data):
        return False
    if any(frame[column].dtype != np.int64 for column in integer_columns):
        return False
    numbers = frame[list(schema.NUMERIC_COLUMNS)].to_numpy()
    low = np.array([bound[0] for bound in schema.NUMERIC_BOUNDS.values()])
    high = np.array([bound[1] for bound in schema.NUMERIC_BOUNDS.values()])
    return bool(
        ((numbers >= low) & (numbers <= high)).all()
        and frame[schema.TARGET_COLUMN].isin(schema.COVER_TYPES).all()
        and frame[schema.WILDERNESS_COLUMN].isin(schema.WILDERNESS_AREAS).all()
        and frame[schema.SOIL_COLUMN].isin(schema.SOIL_TYPES).all()
    )


def _validate_rows_exactly(path: Path, data: list[str]) -> None:
    """Find the first bad line (DatasetError), or accept a valid but non-canonical file."""
    import pandas as pd

    canonical = _CANONICAL_LINE.fullmatch
    irregular = [index for index, line in enumerate(data) if canonical(line) is None]
    for index in irregular:
        _check_row_slowly(path, data, index)
    # Bounds of the canonical lines in one pass; the slow path already checked the others.
    if len(irregular) == len(data):
        return
    regular = data
    if irregular:
        skip = set(irregular)
        regular = [line for index, line in enumerate(data) if index not in skip]
    numbers = pd.read_csv(
        io.StringIO("\n".join(regular)),
        header=None,
        usecols=range(len(schema.NUMERIC_COLUMNS)),
        dtype=np.int64,
        engine="c",
    ).to_numpy()
    low = np.array([bound[0] for bound in schema.NUMERIC_BOUNDS.values()])
    high = np.array([bound[1] for bound in schema.NUMERIC_BOUNDS.values()])
    outside = ((numbers < low) | (numbers > high)).any(axis=1)
    if outside.any():
        first = int(np.argmax(outside))
        index = data.index(regular[first]) if irregular else first
        _check_row_slowly(path, data, index)
        raise AssertionError("bounds check and schema.parse_record disagree")  # pragma: no cover


def _check_row_slowly(path: Path, data: list[str], index: int) -> None:
    line_number = index + 2  # 1-based, after the header
    line = data[index]
    if not line.strip():
        raise DatasetError(path, "empty line", line=line_number)
    try:
        schema.parse_record(line.split(","))
    except schema.RecordError as exc:
        raise DatasetError(path, str(exc), line=line_number) from None


def write_lines(path: Path | str, lines: Sequence[str]) -> Path:
    """Write the course header and `lines` (gzip when the name ends in .gz), atomically.

    The gzip timestamp is fixed so that the same lines give the same bytes.
    """
    path = Path(path)
    data = ("\n".join([HEADER, *lines]) + "\n").encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    write_atomically(path, data)
    return path


@contextmanager
def paused_gc() -> Iterator[None]:
    """Suspend the cyclic garbage collector while building many small acyclic objects."""
    # Building hundreds of thousands of small objects triggers repeated full collections
    # that scan every line already read; the loader creates no reference cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
