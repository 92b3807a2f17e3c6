"""Fixtures for the training tests: labelled rows and a MariaDB training table filled with them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from forest_mlops import database, schema

# Enough rows for every part of the split to hold every class of the dev sample, few enough
# for the quick profile to fit in about a second.
TABLE_ROWS = 3000
BATCHES = 3


@pytest.fixture(scope="session")
def labelled_rows(dev_csv: Path) -> pd.DataFrame:
    """TABLE_ROWS distinct rows of the dev sample (or its synthetic stand-in), course layout."""
    frame = pd.read_csv(dev_csv, nrows=TABLE_ROWS * 2).drop_duplicates(list(schema.COLUMNS))
    return frame.head(TABLE_ROWS).reset_index(drop=True)


def fill_table(url: str, frame: pd.DataFrame, batches: int = BATCHES, group: int = 1) -> None:
    """Insert the rows as `batches` consecutive batches of one group, as ingestion would."""
    engine = database.create_engine(url)
    try:
        size = -(-len(frame) // batches)
        for batch in range(batches):
            part = frame.iloc[batch * size : (batch + 1) * size]
            rows = part[list(schema.COLUMNS)].itertuples(index=False)
            database.insert_rows(engine, rows, batch_number=batch, group_number=group)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def training_table(make_train_database: Callable[[str], str], labelled_rows: pd.DataFrame) -> str:
    """URL of a MariaDB training database holding `labelled_rows` in BATCHES batches."""
    url = make_train_database("fmtraining")
    fill_table(url, labelled_rows)
    return url


@pytest.fixture
def model_name() -> Iterator[str]:
    """A registered-model name of its own, so tests sharing the MLflow server do not mix."""
    yield f"forest-cover-type-{uuid.uuid4().hex[:8]}"
