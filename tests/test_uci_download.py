"""forest_mlops.uci_download: the one-hot -> course layout conversion and the offline failure.

The real download needs the internet, which tests do not have: the conversion runs on arrays
built here in fetch_covtype's shape, and the fetch is run for real against an empty cache.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from forest_mlops import schema, uci_download
from forest_mlops.dataset import load_dataset
from forest_mlops.uci_download import DownloadError, covtype_to_lines


def uci_rows(
    numbers: list[list[int]], wilderness: list[int], soil: list[int], classes: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """fetch_covtype's (data, target): float64 with 54 columns, int32 classes 1..7."""
    x = np.zeros((len(numbers), 54), dtype=np.float64)
    x[:, :10] = numbers
    for i, (w, s) in enumerate(zip(wilderness, soil, strict=True)):
        x[i, 10 + w - 1] = 1
        x[i, 14 + s - 1] = 1
    return x, np.array(classes, dtype=np.int32)


NUMBERS = [
    [2596, 51, 3, 258, 0, 510, 221, 232, 148, 6279],
    [2785, 155, 18, 242, 118, 3090, 238, 238, 122, 6211],
    [2050, 0, 0, 0, -12, 0, 0, 0, 0, 0],
]


def test_one_hot_columns_become_course_codes() -> None:
    x, y = uci_rows(NUMBERS, wilderness=[1, 2, 4], soil=[29, 1, 40], classes=[5, 2, 7])
    lines = covtype_to_lines(x, y)
    assert lines == [
        "2596,51,3,258,0,510,221,232,148,6279,Rawah,C7745,4",
        "2785,155,18,242,118,3090,238,238,122,6211,Neota,C2702,1",
        "2050,0,0,0,-12,0,0,0,0,0,Cache,C8776,6",
    ]


def test_every_category_maps_in_schema_order() -> None:
    n = 40
    numbers = [NUMBERS[0]] * n
    x, y = uci_rows(
        numbers,
        wilderness=[i % 4 + 1 for i in range(n)],
        soil=list(range(1, n + 1)),
        classes=[i % 7 + 1 for i in range(n)],
    )
    rows = [line.split(",") for line in covtype_to_lines(x, y)]
    assert [r[11] for r in rows] == list(schema.SOIL_TYPES)
    assert [r[10] for r in rows[:4]] == ["Rawah", "Neota", "Commanche", "Cache"]
    assert [r[12] for r in rows[:7]] == [str(c) for c in range(7)]
    for row in rows:
        schema.parse_record(row)


def test_written_file_is_a_valid_course_dataset(tmp_path: Path) -> None:
    from forest_mlops.dataset import write_lines

    x, y = uci_rows(NUMBERS, wilderness=[1, 3, 4], soil=[2, 3, 4], classes=[1, 1, 3])
    path = write_lines(tmp_path / "covertype.csv.gz", covtype_to_lines(x, y))
    dataset = load_dataset(path)
    assert len(dataset) == 3 and not dataset.synthetic


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: (x[:, :53], y), "expected 54 feature columns"),
        (lambda x, y: (x, y[:2]), "expected 3 class labels"),
        (lambda x, y: (x, y + 1), r"unexpected UCI classes \[8\]"),
        (lambda x, y: (np.where(np.arange(54) == 12, 1.0, x), y), "wilderness columns are not"),
        (lambda x, y: (np.where(np.arange(54) >= 14, 0.0, x), y), "soil columns are not one-hot"),
        (lambda x, y: (x + np.where(np.arange(54) == 0, 0.5, 0), y), "whole numbers"),
    ],
)
def test_malformed_arrays_are_refused(change, message: str) -> None:  # type: ignore[no-untyped-def]
    x, y = uci_rows(NUMBERS, wilderness=[1, 2, 4], soil=[29, 1, 40], classes=[5, 2, 7])
    with pytest.raises(DownloadError, match=message):
        covtype_to_lines(*change(x, y))


def test_empty_cache_without_download_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"not cached in .* and downloading is off"):
        uci_download.fetch(tmp_path, download_if_missing=False)


def test_offline_download_fails_fast_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Real: the CLI handler tries the real mirror; this machine has no route to it. If a
    # machine running the suite does reach it, the test says so rather than passing.
    from forest_mlops.cli import main

    started = time.monotonic()
    output = tmp_path / "out.csv.gz"
    code = main(["data", "download", "--output", str(output), "--cache-dir", str(tmp_path / "c")])
    elapsed = time.monotonic() - started
    if code == 0:
        pytest.skip("this machine reaches the internet: the offline failure cannot be shown")
    stderr = capsys.readouterr().err
    assert code == 1
    assert "could not download the UCI Covertype data" in stderr
    assert "forest-mlops data synthetic" in stderr
    assert not output.exists()
    assert elapsed < 60
