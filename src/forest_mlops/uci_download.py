"""Get the full UCI Covertype data (581,012 rows) and write it in the course layout.

scikit-learn's `fetch_covtype` downloads covtype.data.gz, checks its SHA-256 and caches it;
this module turns its arrays into the course's 13 columns: the four wilderness one-hot
columns become the area's name, the 40 soil one-hot columns the soil's C-prefixed ELU code
(both in the order of `forest_mlops.schema`), and classes 1..7 become 0..6.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from forest_mlops import dataset, schema
from forest_mlops.dataset import paused_gc

logger = logging.getLogger(__name__)

UCI_ROWS: Final = 581_012
UCI_FEATURES: Final = 54
N_NUMERIC: Final = len(schema.NUMERIC_COLUMNS)
WILDERNESS_SLICE: Final = slice(N_NUMERIC, N_NUMERIC + len(schema.WILDERNESS_AREAS))
SOIL_SLICE: Final = slice(WILDERNESS_SLICE.stop, WILDERNESS_SLICE.stop + len(schema.SOIL_TYPES))
# Seconds a connection may stay silent before the download counts as failed: without it a
# network that drops packets (rather than refusing) leaves urllib waiting forever.
NETWORK_TIMEOUT: Final = 30.0


class DownloadError(RuntimeError):
    """The UCI data could not be fetched or converted; the message says what to do."""


def _one_hot_index(block: npt.NDArray[np.float64], what: str) -> npt.NDArray[np.intp]:
    hot = block == 1
    valid = (hot.sum(axis=1) == 1) & ((block == 0) | hot).all(axis=1)
    if not valid.all():
        row = int(np.argmin(valid))
        raise DownloadError(f"row {row}: the {what} columns are not one-hot: {block[row].tolist()}")
    index: npt.NDArray[np.intp] = hot.argmax(axis=1)
    return index


def covtype_to_lines(features: npt.ArrayLike, target: npt.ArrayLike) -> list[str]:
    """Course-layout CSV lines (no header) from fetch_covtype's `data` and `target` arrays."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target)
    if x.ndim != 2 or x.shape[1] != UCI_FEATURES:
        raise DownloadError(f"expected {UCI_FEATURES} feature columns, got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise DownloadError(f"expected {x.shape[0]} class labels, got shape {y.shape}")
    numeric = x[:, :N_NUMERIC]
    if not np.array_equal(numeric, np.rint(numeric)):
        raise DownloadError("the numeric columns must hold whole numbers")
    classes = y.astype(np.int64) - 1
    if not np.isin(classes, schema.COVER_TYPES).all():
        bad = sorted(set((classes[~np.isin(classes, schema.COVER_TYPES)] + 1).tolist()))
        raise DownloadError(f"unexpected UCI classes {bad[:5]} (expected 1..7)")
    wilderness = _one_hot_index(x[:, WILDERNESS_SLICE], "wilderness")
    soil = _one_hot_index(x[:, SOIL_SLICE], "soil")
    columns: list[list[str]] = [list(map(str, col.tolist())) for col in numeric.astype(np.int64).T]
    columns.append([schema.WILDERNESS_AREAS[i] for i in wilderness.tolist()])
    columns.append([schema.SOIL_TYPES[i] for i in soil.tolist()])
    columns.append(list(map(str, classes.tolist())))
    with paused_gc():
        return [",".join(row) for row in zip(*columns, strict=True)]


@contextmanager
def _network_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch(
    cache_dir: Path | None = None, *, download_if_missing: bool = True
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """fetch_covtype's arrays, downloading into `cache_dir` (sklearn's data home) when needed."""
    from sklearn.datasets import fetch_covtype

    try:
        with _network_timeout(NETWORK_TIMEOUT):
            bunch = fetch_covtype(
                data_home=str(cache_dir) if cache_dir else None,
                download_if_missing=download_if_missing,
                n_retries=2,
                delay=1.0,
            )
    except OSError as exc:  # URLError, timeouts, checksum mismatch and a missing cache
        where = cache_dir or "scikit-learn's default data home"
        if not download_if_missing:
            raise DownloadError(
                f"the UCI Covertype data is not cached in {where} and downloading is off"
            ) from exc
        raise DownloadError(
            f"could not download the UCI Covertype data ({exc}). It needs internet access "
            "to the scikit-learn dataset mirror; without it, use the course CSV you have, or "
            "`forest-mlops data synthetic` for generated rows."
        ) from exc
    return bunch.data, bunch.target


def download(output: Path, cache_dir: Path | None = None) -> int:
    """Fetch the UCI data, convert it and write `output`; returns the number of rows."""
    features, target = fetch(cache_dir)
    lines = covtype_to_lines(features, target)
    dataset.write_lines(output, lines)
    logger.info("wrote %d rows to %s", len(lines), output)
    return len(lines)
