"""api_data.batches: the layout arithmetic and the pre-encoded sampling."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from api_data.batches import BatchData, BatchLayout, LayoutError, encode_row, encode_rows
from forest_mlops import synthetic
from forest_mlops.dataset import Dataset


def test_full_size_layout_matches_the_course_api() -> None:
    layout = BatchLayout.build(581_012, 10, 0.1)
    assert layout.batch_size == 58_101
    assert layout.sample_size == 5_810  # 58101 // 10
    assert layout.bounds[0] == (0, 58_101)
    assert layout.bounds[9] == (522_909, 581_012)  # the last batch takes the remainder
    assert sum(layout.batch_rows(i) for i in range(10)) == 581_012
    assert all(layout.bounds[i][1] == layout.bounds[i + 1][0] for i in range(9))


@pytest.mark.parametrize(("rows", "size"), [(100, 1), (1000, 10), (75_000, 750), (2003, 20)])
def test_sample_size_is_batch_size_div_10(rows: int, size: int) -> None:
    assert BatchLayout.build(rows, 10, 0.1).sample_size == size


def test_tiny_batches_still_serve_a_row_and_too_few_rows_are_refused() -> None:
    assert BatchLayout.build(15, 10, 0.1).sample_size == 1
    with pytest.raises(LayoutError, match="9 rows, fewer than the 10 batches"):
        BatchLayout.build(9, 10, 0.1)
    assert BatchLayout.build(50, 3, 1.0).sample_size == 16


def test_encode_row_is_the_json_array_of_the_fields() -> None:
    line = "2862,294,22,120,18,1273,154,229,213,1323,Commanche,C7757,0"
    assert encode_row(line) == orjson.dumps(line.split(","))
    odd = "2862.0,\t294,22,120,18,1273,154,229,213,1323,Commanche,C7757,0"
    assert orjson.loads(encode_row(odd)) == odd.split(",")


def test_encode_rows_fast_path_equals_row_by_row() -> None:
    lines = synthetic.generate_lines(50, seed=4)
    assert encode_rows(lines) == [encode_row(line) for line in lines]
    odd = [*lines[:3], "1,\t2," + lines[3][4:]]
    assert encode_rows(odd) == [orjson.dumps(line.split(",")) for line in odd]


def test_samples_are_fresh_distinct_rows_of_the_batch() -> None:
    lines = synthetic.generate_lines(1005, seed=2)
    dataset = Dataset(Path("x.csv"), lines, synthetic=True)
    layout = BatchLayout.build(len(lines), 10, 0.1)
    data = BatchData(dataset, layout, seed=1)
    for batch in (0, 9):
        start, stop = layout.bounds[batch]
        allowed = {tuple(line.split(",")) for line in lines[start:stop]}
        body, count = data.sample_json(batch)
        rows = orjson.loads(body)
        assert count == len(rows) == 10
        assert len({tuple(r) for r in rows}) == 10
        assert all(tuple(r) in allowed for r in rows)
    assert data.sample_json(3)[0] != data.sample_json(3)[0]
    one, two = BatchData(dataset, layout, seed=1), BatchData(dataset, layout, seed=1)
    assert [one.sample_json(b)[0] for b in (0, 9, 9)] == [two.sample_json(b)[0] for b in (0, 9, 9)]
