"""The batch layout and the per-batch data, encoded once so a response is a sample and a join.

The dataset is cut into `n_batches` batches in file order: batch_size = rows // n_batches and
the last batch also takes the remainder, so no row is unreachable. A response carries a fresh
random sample of `sample_size` rows (batch_size * sample_fraction, at least one) of a batch.

Each row's JSON (the array of its 13 strings) is encoded once at start-up, so serving a
request costs a random choice of indexes and joining the chosen byte strings.

Each row also gets a content id at start-up: rows that are the same record (the same typed
values, however the file spells them) share one id, so "distinct rows served" counts records
the way the training table's unique key over the 13 columns does (api_data.served).
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import numpy as np
import orjson

from forest_mlops import schema
from forest_mlops.dataset import Dataset, paused_gc


class LayoutError(ValueError):
    """The dataset is too small for the requested number of batches."""


@dataclass(frozen=True)
class BatchLayout:
    n_rows: int
    n_batches: int
    batch_size: int
    sample_size: int
    # (start, stop) row indexes of each batch, stop exclusive.
    bounds: tuple[tuple[int, int], ...]

    @classmethod
    def build(cls, n_rows: int, n_batches: int, sample_fraction: float) -> BatchLayout:
        if n_batches < 1:
            raise LayoutError(f"need at least one batch, got {n_batches}")
        if n_rows < n_batches:
            raise LayoutError(
                f"the dataset has {n_rows} rows, fewer than the {n_batches} batches it must "
                "be cut into"
            )
        batch_size = n_rows // n_batches
        bounds = tuple(
            (i * batch_size, n_rows if i == n_batches - 1 else (i + 1) * batch_size)
            for i in range(n_batches)
        )
        # Exact arithmetic: 0.1 * 58101 must give 5810 (= 58101 // 10), as the course API does.
        fraction = Fraction(str(sample_fraction))
        sample_size = max(1, math.floor(batch_size * fraction))
        return cls(n_rows, n_batches, batch_size, sample_size, bounds)

    def batch_rows(self, batch: int) -> int:
        start, stop = self.bounds[batch]
        return stop - start

    def describe(self) -> dict[str, object]:
        return {
            "rows": self.n_rows,
            "batches": self.n_batches,
            "batch_size": self.batch_size,
            "sample_size": self.sample_size,
            "batch_bounds": [
                {"batch_number": i, "start": start, "stop": stop, "rows": stop - start}
                for i, (start, stop) in enumerate(self.bounds)
            ],
        }


_PRINTABLE_ASCII_OR_NEWLINE = bytes(range(0x20, 0x7F)) + b"\n"


def encode_row(line: str) -> bytes:
    """The JSON array of a CSV line's fields, as strings."""
    # Validated fields need no escaping when the line is printable ASCII (no quote or
    # backslash can pass the schema), which is every line of the course data; anything
    # else goes through the JSON encoder.
    if line.isascii() and line.isprintable():
        return ('["' + line.replace(",", '","') + '"]').encode("ascii")
    return orjson.dumps(line.split(","))


def encode_rows(lines: list[str]) -> list[bytes]:
    """`encode_row` of every line, done on the joined text at C speed when it is plain."""
    text = "\n".join(lines)
    if text.isascii():
        joined = text.encode("ascii")
        if not joined.translate(None, _PRINTABLE_ASCII_OR_NEWLINE):
            quoted = b'["' + joined.replace(b",", b'","').replace(b"\n", b'"]\n["') + b'"]'
            return quoted.split(b"\n")
    return [encode_row(line) for line in lines]


# A line spelled exactly as the typed record prints: no sign on 0, no leading zeros, no
# spaces, no ".0", the course's names. Such a line is its own content key; any other (valid)
# spelling is parsed first, so "12.0" and "12" are one record, as they are in the table.
_CANONICAL_SPELLING: Final = re.compile(
    ",".join([r"(?:0|-?[1-9][0-9]{0,5})"] * len(schema.NUMERIC_COLUMNS))
    + ",(?:"
    + "|".join(re.escape(name) for name in schema.WILDERNESS_AREAS)
    + r"),C[0-9]{4},[0-9]",
    re.ASCII,
)


def content_key(line: str) -> str:
    """The record a validated line holds, as text: equal keys are equal typed records."""
    if _CANONICAL_SPELLING.fullmatch(line):
        return line
    return ",".join(str(value) for value in schema.parse_record(line.split(",")))


def content_ids(lines: list[str]) -> tuple[np.ndarray, int]:
    """An id per line (equal records share one) and the number of distinct records."""
    ids: dict[str, int] = {}
    numbered = [ids.setdefault(content_key(line), len(ids)) for line in lines]
    return np.asarray(numbered, dtype=np.int32), len(ids)


@dataclass(frozen=True)
class Sample:
    """One response's rows: their JSON array and the content id of each."""

    body: bytes
    content_ids: np.ndarray

    @property
    def count(self) -> int:
        return int(self.content_ids.size)


class BatchData:
    """Pre-encoded rows of every batch, and the random sampling of a response."""

    def __init__(self, dataset: Dataset, layout: BatchLayout, seed: int | None = None) -> None:
        self.layout = layout
        with paused_gc():
            self._rows: list[list[bytes]] = [
                encode_rows(dataset.lines[start:stop]) for start, stop in layout.bounds
            ]
            ids, self.distinct_records = content_ids(dataset.lines)
        self._content_ids = [ids[start:stop] for start, stop in layout.bounds]
        self._rng = np.random.default_rng(seed)

    def sample_indexes(self, batch: int) -> list[int]:
        n = self.layout.batch_rows(batch)
        k = min(self.layout.sample_size, n)
        indexes: list[int] = self._rng.choice(n, size=k, replace=False).tolist()
        return indexes

    def sample(self, batch: int) -> Sample:
        """A fresh random sample of the batch's rows: its JSON array and content ids."""
        indexes = self.sample_indexes(batch)
        rows = self._rows[batch]
        if len(indexes) == 1:
            chosen: tuple[bytes, ...] = (rows[indexes[0]],)
        else:
            chosen = operator.itemgetter(*indexes)(rows)
        return Sample(b"[" + b",".join(chosen) + b"]", self._content_ids[batch][indexes])

    def sample_json(self, batch: int) -> tuple[bytes, int]:
        """A JSON array of a fresh random sample of the batch's rows, and its row count."""
        sample = self.sample(batch)
        return sample.body, sample.count
