"""Deterministic train / validation / test split by a hash of each row's 13 values.

A row's part depends only on its own values (the SHA-256 of the typed record, the same
`row_hash` the ingestion stores), never on which other rows exist or their order. So a row
never changes part as the table grows, a model is never tested on rows an earlier model
trained on, and successive models are compared on comparable test rows. Identical records
share a hash and therefore a part, which keeps duplicates from leaking across the split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from forest_mlops import schema
from forest_mlops.database import row_hash

TRAIN: Final = "train"
VALIDATION: Final = "validation"
TEST: Final = "test"
PARTS: Final = (TRAIN, VALIDATION, TEST)

# Fractions of the hash space: 70 / 15 / 15.
TRAIN_FRACTION: Final = 0.70
VALIDATION_FRACTION: Final = 0.15

# The first 64 bits of the digest, scaled to [0, 1).
_HEX_DIGITS: Final = 16
_SCALE: Final = float(2**64)


def row_hashes(frame: pd.DataFrame) -> list[str]:
    """The SHA-256 row hash of every row of a frame holding the 13 course columns."""
    columns = [frame[c].tolist() for c in schema.COLUMNS]
    return [row_hash(values) for values in zip(*columns, strict=True)]


def hash_positions(hashes: Iterable[str]) -> np.ndarray:
    """Each hash as a number in [0, 1): where the row falls in the hash space."""
    return np.fromiter((int(h[:_HEX_DIGITS], 16) / _SCALE for h in hashes), dtype=np.float64)


def assign_parts(hashes: Iterable[str]) -> np.ndarray:
    """The part ("train", "validation" or "test") of each row hash."""
    positions = hash_positions(hashes)
    parts = np.full(positions.shape, TEST, dtype=object)
    parts[positions < TRAIN_FRACTION + VALIDATION_FRACTION] = VALIDATION
    parts[positions < TRAIN_FRACTION] = TRAIN
    return parts


def data_fingerprint(hashes: Iterable[str]) -> str:
    """SHA-256 over the sorted row hashes: the same rows give the same value in any order."""
    digest = hashlib.sha256()
    for h in sorted(hashes):
        digest.update(h.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class SplitFrames:
    """The three parts of a training frame (each keeps the frame's columns and index)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {TRAIN: len(self.train), VALIDATION: len(self.validation), TEST: len(self.test)}


def split_frame(frame: pd.DataFrame, hashes: list[str] | None = None) -> SplitFrames:
    """Split a frame with the 13 course columns; `hashes` saves recomputing known row hashes."""
    parts = assign_parts(hashes if hashes is not None else row_hashes(frame))
    return SplitFrames(
        train=frame[parts == TRAIN],
        validation=frame[parts == VALIDATION],
        test=frame[parts == TEST],
    )
