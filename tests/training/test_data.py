"""The data snapshot a training run reads: bounded, fingerprinted, re-readable in another task."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
import sqlalchemy as sa

from forest_mlops import database
from forest_mlops.training import data, split
from tests.training.conftest import fill_table


def test_snapshot_survives_growth_and_detects_changed_rows(
    make_train_database: Callable[[str], str], labelled_rows: pd.DataFrame
) -> None:
    url = make_train_database("fmsnap")
    first, later = labelled_rows.head(600), labelled_rows.iloc[600:800]
    fill_table(url, first, batches=2)
    engine = database.create_engine(url)
    try:
        snapshot, _frame = data.take_snapshot(engine, synthetic=False)
        assert snapshot.rows == 600
        assert snapshot.batches == "group 1: 0-1"
        assert snapshot.data_hash == split.data_fingerprint(split.row_hashes(first))
        assert not snapshot.synthetic
        assert data.Snapshot.from_dict(snapshot.to_dict()) == snapshot

        # Ingestion keeps appending: a later task still reads exactly the snapshot's rows.
        fill_table(url, later, batches=1, group=2)
        again, hashes = data.read_snapshot(engine, snapshot)
        assert len(again) == 600
        assert split.data_fingerprint(hashes) == snapshot.data_hash
        grown, _ = data.take_snapshot(engine, synthetic=False)
        assert grown.batches == "group 1: 0-1; group 2: 0"

        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM forest_cover_data ORDER BY id LIMIT 1"))
        with pytest.raises(data.SnapshotChanged, match="changed since prepare"):
            data.read_snapshot(engine, snapshot)
    finally:
        engine.dispose()


def test_snapshot_is_synthetic_when_ingestion_logged_a_synthetic_batch(
    make_train_database: Callable[[str], str], labelled_rows: pd.DataFrame
) -> None:
    url = make_train_database("fmsynth")
    fill_table(url, labelled_rows.head(100), batches=1)
    engine = database.create_engine(url)
    try:
        assert data.take_snapshot(engine, synthetic=True)[0].synthetic
        assert not data.take_snapshot(engine, synthetic=False)[0].synthetic
        now = database.utcnow()
        with engine.begin() as conn:
            conn.execute(
                sa.insert(database.tables(engine).log).values(
                    ingestion_run_id="r1", group_number=1, batch_number=0, requests=1,
                    rows_received=100, rows_inserted=100, rows_duplicate=0, rows_rejected=0,
                    status="loaded", synthetic=True, started_at=now, finished_at=now,
                )
            )  # fmt: skip
        assert data.take_snapshot(engine, synthetic=False)[0].synthetic
    finally:
        engine.dispose()


def test_batch_ranges() -> None:
    frame = pd.DataFrame({"group_number": [1, 1, 1, 1, 3], "batch_number": [0, 1, 2, 5, 4]})
    assert data.describe_batches(frame) == "group 1: 0-2,5; group 3: 4"
