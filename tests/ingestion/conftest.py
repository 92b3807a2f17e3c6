from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from forest_mlops import database
from tests.ingestion.servers import write_dataset


@pytest.fixture(scope="session")
def small_dataset(dev_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """3,000 course-layout rows (real dev sample, or synthetic) and the file holding them."""
    path = tmp_path_factory.mktemp("ingest-data") / "covertype_small.csv"
    rows = write_dataset(dev_csv, path, 3000)
    return path, rows


@pytest.fixture(params=["mysql", "sqlite"])
def engine(
    request: pytest.FixtureRequest,
    make_train_database: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[sa.Engine]:
    """A schema'd training database on MariaDB, then on SQLite (the embedded local mode)."""
    if request.param == "mysql":
        url = make_train_database("fmingest")
    else:
        url = f"sqlite:///{tmp_path / 'train.db'}"
    eng = database.create_engine(url)
    if request.param == "sqlite":
        database.apply_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def mysql_engine(make_train_database: Callable[[str], str]) -> Iterator[sa.Engine]:
    eng = database.create_engine(make_train_database("fmingest"))
    yield eng
    eng.dispose()


def count(engine: sa.Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table} {where}").scalar_one())
