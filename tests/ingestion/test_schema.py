"""mysql-init/: the schema on MariaDB and SQLite, the uniqueness rule, and the users script."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from forest_mlops import database, schema
from tests.conftest import MYSQL_ADMIN_URL
from tests.ingestion.conftest import count

ROWS = [
    ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "4"],
    ["2590", "56", "2", "212", "-6", "390", "220", "235", "151", "6225", "Comanche", "C2702", "1"],
]
REPO = Path(__file__).resolve().parents[2]


def test_schema_creates_the_tables_and_applies_again(engine: sa.Engine) -> None:
    database.apply_schema(engine)  # the fixture applied it once already
    tables = database.tables(engine)
    data_columns = [c.name for c in tables.data.columns]
    assert data_columns[1:14] == list(schema.COLUMNS)
    assert {"batch_number", "group_number", "ingestion_run_id", "row_hash", "timestamp"} <= set(
        data_columns
    )
    for column in schema.NUMERIC_COLUMNS:
        assert tables.data.c[column].type.python_type is int, column
    unique = [
        c["column_names"] for c in sa.inspect(engine).get_unique_constraints("forest_cover_data")
    ]
    if not unique:  # MariaDB reports unique keys as unique indexes
        unique = [
            ix["column_names"]
            for ix in sa.inspect(engine).get_indexes("forest_cover_data")
            if ix["unique"]
        ]
    assert unique == [list(schema.COLUMNS)]
    inference = [c.name for c in tables.inference_log.columns]
    assert set(schema.FEATURE_COLUMNS) <= set(inference)


def test_a_record_is_stored_once_whatever_batch_brings_it(engine: sa.Engine) -> None:
    assert database.insert_rows(engine, ROWS, batch_number=0, group_number=1) == 2
    assert database.insert_rows(engine, ROWS, batch_number=3, group_number=1) == 0
    other_class = [*ROWS[0][:12], "5"]  # same features, another label: another record
    assert database.insert_rows(engine, [other_class], batch_number=3) == 1
    frame = database.read_training_frame(engine)
    assert list(frame.columns) == [*schema.COLUMNS, "batch_number"]
    assert frame["batch_number"].tolist() == [0, 0, 3]
    assert frame["Wilderness_Area"].tolist() == ["Rawah", "Commanche", "Rawah"]  # normalised
    assert str(frame["Elevation"].dtype) == "int64"
    assert str(frame["Cover_Type"].dtype) == "int64"
    with engine.connect() as conn:
        hashes = conn.execute(sa.text("SELECT row_hash FROM forest_cover_data ORDER BY id"))
        assert [h for (h,) in hashes] == [
            database.row_hash(schema.parse_record(r)) for r in [*ROWS, other_class]
        ]


def test_insert_rows_refuses_a_bad_row_and_writes_nothing(engine: sa.Engine) -> None:
    with pytest.raises(schema.RecordError, match="Soil_Type"):
        database.insert_rows(engine, [ROWS[0], [*ROWS[1][:11], "C0000", "1"]], batch_number=0)
    assert count(engine, "forest_cover_data") == 0


def test_the_schema_folder_can_be_pointed_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert database.schema_dir() == REPO / "mysql-init"
    copy = tmp_path / "initdb"
    shutil.copytree(REPO / "mysql-init", copy)
    monkeypatch.setenv("FOREST_SCHEMA_DIR", str(copy))
    assert database.schema_dir() == copy
    monkeypatch.setenv("FOREST_SCHEMA_DIR", str(tmp_path / "missing"))
    with pytest.raises(database.SchemaNotFoundError, match="FOREST_SCHEMA_DIR"):
        database.schema_dir()


def test_sqlite_translation_keeps_the_unique_rule() -> None:
    script = (REPO / "mysql-init" / "01-train-data-schema.sql").read_text()
    create = next(s for s in database.split_statements(script) if "forest_cover_data (" in s)
    translated = database.to_sqlite(create)
    assert "CONSTRAINT uq_forest_cover_data_record UNIQUE" in translated
    assert "AUTOINCREMENT" in translated
    assert "CHARSET" not in translated


# --- mysql-init/02-databases-and-users.sh against MariaDB ---

USERS_SCRIPT = REPO / "mysql-init" / "02-databases-and-users.sh"


def mysql_client_command() -> str:
    url = sa.make_url(MYSQL_ADMIN_URL)
    command = f"mysql --protocol=tcp -h{url.host} -P{url.port or 3306} -u{url.username}"
    return command + (f" -p{url.password}" if url.password else "")


@pytest.fixture
def throwaway_names(mysql_admin_engine: sa.Engine) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "MYSQL_DATABASE": f"fmu_train_{suffix}",
        "TRAIN_DB_USER": f"fmu_tr_{suffix}",
        "MLFLOW_DB_NAME": f"fmu_mlflow_{suffix}",
        "MLFLOW_DB_USER": f"fmu_ml_{suffix}",
        "INFERENCE_DB_USER": f"fmu_in_{suffix}",
    }
    yield names
    with mysql_admin_engine.begin() as conn:
        for key in ("MYSQL_DATABASE", "MLFLOW_DB_NAME"):
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{names[key]}`"))
        for key in ("TRAIN_DB_USER", "MLFLOW_DB_USER", "INFERENCE_DB_USER"):
            conn.execute(sa.text(f"DROP USER IF EXISTS '{names[key]}'@'%'"))


# MySQL/MariaDB error numbers of a privilege refusal: no grant on the database (at connect), and
# no grant for this statement on the table.
DATABASE_ACCESS_DENIED = 1044
TABLE_COMMAND_DENIED = 1142


def run_users_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith("_DB_PASSWORD")}
    return subprocess.run(
        ["bash", str(USERS_SCRIPT)],
        env={**base, "MYSQL_INIT_CLIENT": mysql_client_command(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("mysql") is None, reason="needs the mysql client (MariaDB)")
def test_users_script_gives_each_user_its_own_database_only(
    throwaway_names: dict[str, str], mysql_admin_engine: sa.Engine
) -> None:
    names = throwaway_names
    train_db = names["MYSQL_DATABASE"]
    with mysql_admin_engine.begin() as conn:  # what the image's entrypoint does first
        conn.execute(sa.text(f"CREATE DATABASE `{train_db}`"))
    engine = database.create_engine(f"{MYSQL_ADMIN_URL}/{train_db}")
    database.apply_schema(engine)
    engine.dispose()
    passwords = {
        "TRAIN_DB_PASSWORD": "tr-" + uuid.uuid4().hex,
        "MLFLOW_DB_PASSWORD": "it's a \\ quote",  # quotes and backslashes survive
        "INFERENCE_DB_PASSWORD": "in-" + uuid.uuid4().hex,
    }
    result = run_users_script({**names, **passwords})
    assert result.returncode == 0, result.stderr

    host = sa.make_url(MYSQL_ADMIN_URL).set(username=None, password=None, database=None)

    def connect(user_key: str, password_key: str, database_name: str) -> sa.Engine:
        url = host.set(username=names[user_key], password=passwords[password_key])
        return sa.create_engine(url.set(database=database_name))

    def refused(engine: sa.Engine, sql: str) -> int | None:
        """None when `sql` ran; else the number of the MySQL error the server refused it with."""
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(sql))
        except sa.exc.DBAPIError as exc:
            code: int = exc.orig.args[0]  # pymysql: (errno, message)
            return code
        finally:
            engine.dispose()
        return None

    # Only a privilege refusal proves the grant is missing: a wrong password (1045), an unknown
    # database (1049) or an unreachable server would also fail the statement.
    mlflow_db = names["MLFLOW_DB_NAME"]
    mlflow = partial(connect, "MLFLOW_DB_USER", "MLFLOW_DB_PASSWORD")
    train = partial(connect, "TRAIN_DB_USER", "TRAIN_DB_PASSWORD")
    inference_user = partial(connect, "INFERENCE_DB_USER", "INFERENCE_DB_PASSWORD")
    assert refused(mlflow(mlflow_db), "CREATE TABLE t (i INT)") is None
    assert refused(mlflow(train_db), "SELECT 1") == DATABASE_ACCESS_DENIED
    assert refused(train(train_db), "SELECT COUNT(*) FROM forest_cover_data") is None
    assert refused(train(mlflow_db), "SELECT 1") == DATABASE_ACCESS_DENIED
    inference = (
        "INSERT INTO inference_log (predicted_at, model_name, model_version, "
        + ", ".join(schema.FEATURE_COLUMNS)
        + ", cover_type, probability, latency_ms) VALUES (NOW(), 'm', '1', "
        + ("1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 'Rawah', 'C2702', 0, 0.9, 1.5)")
    )
    assert refused(inference_user(train_db), inference) is None
    assert (
        refused(inference_user(train_db), "SELECT COUNT(*) FROM forest_cover_data")
        == TABLE_COMMAND_DENIED
    )


def test_users_script_fails_naming_missing_passwords(
    throwaway_names: dict[str, str], mysql_admin_engine: sa.Engine
) -> None:
    result = run_users_script({**throwaway_names, "MLFLOW_DB_PASSWORD": "x"})
    assert result.returncode == 1
    assert "missing required environment variable(s): TRAIN_DB_PASSWORD INFERENCE_DB_PASSWORD" in (
        result.stderr
    )
    assert "INFERENCE_DB_PASSWORD" in result.stderr
    with mysql_admin_engine.connect() as conn:
        databases = set(conn.execute(sa.text("SHOW DATABASES")).scalars())
    assert throwaway_names["MLFLOW_DB_NAME"] not in databases  # nothing was created


def test_no_password_is_committed_in_mysql_init() -> None:
    for path in (REPO / "mysql-init").iterdir():
        text = path.read_text()
        assert "IDENTIFIED BY '" not in text.replace("IDENTIFIED BY '$(", ""), path
