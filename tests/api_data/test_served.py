"""Distinct rows served per group (api_data.served) and the content ids it counts by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from api_data.batches import BatchData, BatchLayout, content_ids, content_key
from api_data.served import ServedRows
from forest_mlops import synthetic
from forest_mlops.dataset import Dataset

LINE = "2862,294,22,120,18,1273,154,229,213,1323,Commanche,C7757,0"


def test_a_canonical_line_is_its_own_key_and_other_spellings_of_it_share_it() -> None:
    assert content_key(LINE) == LINE
    # What the table's unique key over the typed columns would store once.
    for spelling in (
        "2862.0,294,22,120,18,1273,154,229,213,1323,Commanche,C7757,0",
        "02862, 294,22,120,18,1273,154,229,213,1323,Comanche,C7757 ,0.0",
    ):
        assert content_key(spelling) == LINE
    assert content_key("2862,294,22,120,-0,1273,154,229,213,1323,Rawah,C7757,0") == (
        "2862,294,22,120,0,1273,154,229,213,1323,Rawah,C7757,0"
    )
    assert content_key(LINE.replace("2862", "2863")) != LINE


def test_equal_records_share_an_id_across_batches() -> None:
    lines = [LINE, LINE.replace("2862", "2863"), LINE.replace("2862", "2862.0"), LINE]
    ids, distinct = content_ids(lines)
    assert ids.tolist() == [0, 1, 0, 0]
    assert distinct == 2


def test_each_sample_carries_the_content_ids_of_its_rows() -> None:
    lines = synthetic.generate_lines(1005, seed=2)
    layout = BatchLayout.build(len(lines), 10, 0.1)
    data = BatchData(Dataset(Path("x.csv"), lines, synthetic=True), layout, seed=1)
    ids, distinct = content_ids(lines)
    assert data.distinct_records == distinct
    sample = data.sample(4)
    rows = [",".join(row) for row in orjson.loads(sample.body)]
    assert sample.count == len(rows) == 10
    assert sample.content_ids.tolist() == [int(ids[lines.index(row)]) for row in rows]


def test_each_record_counts_once_per_group_whatever_the_repeats() -> None:
    served = ServedRows(groups=3, records=10, clock=lambda: 123.0)
    assert served.since == 123.0
    assert served.record(1, np.array([0, 1, 2], dtype=np.int32)) == 3
    assert served.record(1, np.array([2, 3, 3, 1], dtype=np.int32)) == 4  # 3 is new, once
    assert served.record(2, np.array([0, 1], dtype=np.int32)) == 2  # groups are independent
    assert served.record(1, np.array([], dtype=np.int32)) == 4
    assert [served.distinct(g) for g in (1, 2, 3)] == [4, 2, 0]
