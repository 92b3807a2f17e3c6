"""The hash split: a row's part depends on its values only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from forest_mlops import database, schema
from forest_mlops.training import split


def parts_by_hash(frame: pd.DataFrame) -> dict[str, str]:
    hashes = split.row_hashes(frame)
    return dict(zip(hashes, split.assign_parts(hashes), strict=True))


def test_a_row_keeps_its_part_when_the_table_grows_or_is_reordered(
    labelled_rows: pd.DataFrame,
) -> None:
    small = parts_by_hash(labelled_rows.head(500))
    grown = parts_by_hash(labelled_rows)
    shuffled = parts_by_hash(labelled_rows.sample(frac=1.0, random_state=7))
    assert all(grown[h] == part for h, part in small.items())
    assert shuffled == grown


def test_parts_are_about_70_15_15(labelled_rows: pd.DataFrame) -> None:
    sizes = split.split_frame(labelled_rows).sizes()
    total = sum(sizes.values())
    assert total == len(labelled_rows)
    assert abs(sizes[split.TRAIN] / total - 0.70) < 0.03
    assert abs(sizes[split.VALIDATION] / total - 0.15) < 0.03
    assert abs(sizes[split.TEST] / total - 0.15) < 0.03


def test_identical_records_share_a_part(labelled_rows: pd.DataFrame) -> None:
    doubled = pd.concat([labelled_rows.head(300), labelled_rows.head(300)], ignore_index=True)
    parts = split.assign_parts(split.row_hashes(doubled))
    assert list(parts[:300]) == list(parts[300:])


def test_boundaries_of_the_hash_space() -> None:
    # The first 16 hex digits place a row in [0, 1): below 0.70 train, below 0.85 validation.
    def at(position: float) -> str:
        return f"{int(position * 2**64):016x}" + "0" * 48

    parts = split.assign_parts([at(0.0), at(0.6999), at(0.7001), at(0.8499), at(0.8501)])
    assert list(parts) == ["train", "train", "validation", "validation", "test"]


def test_split_uses_the_row_hash_the_ingestion_stores(training_table: str) -> None:
    engine = database.create_engine(training_table)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text(f"SELECT {', '.join(schema.COLUMNS)}, row_hash FROM forest_cover_data")
            ).fetchall()
    finally:
        engine.dispose()
    frame = pd.DataFrame([r[:13] for r in stored], columns=list(schema.COLUMNS))
    assert split.row_hashes(frame) == [r[13] for r in stored]


def test_fingerprint_ignores_order_and_sees_every_row(labelled_rows: pd.DataFrame) -> None:
    hashes = split.row_hashes(labelled_rows.head(200))
    assert split.data_fingerprint(hashes) == split.data_fingerprint(hashes[::-1])
    assert split.data_fingerprint(hashes) != split.data_fingerprint(hashes[:-1])
    changed = labelled_rows.head(200).copy()
    changed.loc[0, "Elevation"] += 1
    assert split.data_fingerprint(split.row_hashes(changed)) != split.data_fingerprint(hashes)


def test_split_frame_keeps_columns_and_partitions_the_rows(labelled_rows: pd.DataFrame) -> None:
    parts = split.split_frame(labelled_rows)
    index = np.concatenate([parts.train.index, parts.validation.index, parts.test.index])
    assert sorted(index) == list(labelled_rows.index)
    assert list(parts.test.columns) == list(labelled_rows.columns)
