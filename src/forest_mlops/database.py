"""Data access for the training data: engines, the schema in mysql-init/, and table access.

The tables are defined once, in mysql-init/*.sql (MySQL dialect). `apply_schema` runs those
files on MySQL/MariaDB as written and, for the embedded SQLite mode, transpiled by sqlglot.
Python code reaches the tables through SQLAlchemy reflection (`tables(engine)`), so no column
list is restated here beyond `forest_mlops.schema.COLUMNS`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa

from forest_mlops import schema

log = logging.getLogger(__name__)

SCHEMA_DIR_ENV: Final = "FOREST_SCHEMA_DIR"
DATABASE_URL_ENV: Final = "FOREST_DATABASE_URL"

DATA_TABLE: Final = "forest_cover_data"
LOG_TABLE: Final = "ingestion_log"
REJECTED_TABLE: Final = "rejected_rows"
STAGING_TABLE: Final = "ingestion_staging"
INFERENCE_LOG_TABLE: Final = "inference_log"
TABLE_NAMES: Final = (DATA_TABLE, LOG_TABLE, REJECTED_TABLE, STAGING_TABLE, INFERENCE_LOG_TABLE)

# Dtypes of the training frame: the integer features and the target as int64, the two
# categorical columns as str (the model contract in docs/ARCHITECTURE.md).
_INT_COLUMNS: Final = (*schema.NUMERIC_COLUMNS, schema.TARGET_COLUMN, "batch_number")


class SchemaNotFoundError(RuntimeError):
    """mysql-init/ could not be located."""


def create_engine(url: str | sa.URL, **kwargs: Any) -> sa.Engine:
    """An engine for a FOREST_DATABASE_URL-style URL (mysql+pymysql://... or sqlite:///...)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "mysql":
        # Long-lived workers (Airflow, the inference logger) outlive MySQL's wait_timeout.
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_recycle", 3600)
    elif parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(parsed, **kwargs)


def engine_from_env() -> sa.Engine:
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise RuntimeError(f"{DATABASE_URL_ENV} is not set (e.g. sqlite:///forest.db)")
    return create_engine(url)


def schema_dir() -> Path:
    """The mysql-init/ folder: $FOREST_SCHEMA_DIR, else found above this file or the cwd.

    A source checkout has mysql-init/ above src/; a built wheel carries the same files as
    forest_mlops/mysql-init/ (pyproject's force-include), found beside this module.
    """
    override = os.environ.get(SCHEMA_DIR_ENV)
    if override:
        path = Path(override)
        if not any(path.glob("*.sql")):
            raise SchemaNotFoundError(f"{SCHEMA_DIR_ENV}={override} holds no *.sql file")
        return path
    here = Path(__file__).resolve()
    searched = [*here.parents, Path.cwd(), *Path.cwd().parents]
    for base in searched:
        candidate = base / "mysql-init"
        if any(candidate.glob("*.sql")):
            return candidate
    raise SchemaNotFoundError(
        f"mysql-init/ not found above {here} or {Path.cwd()}; set {SCHEMA_DIR_ENV}"
    )


def schema_files(directory: Path | None = None) -> list[Path]:
    """The schema's SQL files in the order the MySQL entrypoint runs them (sorted by name)."""
    return sorted((directory or schema_dir()).glob("*.sql"))


def split_statements(sql: str) -> list[str]:
    """Split a SQL script into statements as written (the mysql client does this in the image)."""
    import sqlglot

    tokens = sqlglot.Dialect.get_or_raise("mysql").tokenize(sql)
    statements: list[str] = []
    start = 0
    for token in tokens:
        if token.token_type == sqlglot.TokenType.SEMICOLON:
            statements.append(sql[start : token.start])
            start = token.end + 1
    statements.append(sql[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in statement.splitlines()
    )


def to_sqlite(statement: str) -> str:
    """Transpile one MySQL statement of the schema to SQLite."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(statement, read="mysql")
    # Table options and column character sets mean nothing to SQLite (text is UTF-8, compared
    # bytewise); sqlglot would only warn about the former and copy the latter.
    for props in list(tree.find_all(exp.Properties)):
        props.pop()
    for constraint in list(tree.find_all(exp.ColumnConstraint)):
        if isinstance(
            constraint.kind, exp.CharacterSetColumnConstraint | exp.CollateColumnConstraint
        ):
            constraint.pop()

    return tree.sql(dialect="sqlite")


@dataclass(frozen=True)
class _Column:
    name: str
    mysql: str  # ALTER TABLE ... ADD COLUMN, as written in the schema
    sqlite: str


@dataclass(frozen=True)
class _Statement:
    mysql: str
    sqlite: str
    index: tuple[str, str] | None  # (table, index name) of a CREATE INDEX
    table: str | None = None  # the table of a CREATE TABLE
    columns: tuple[_Column, ...] = ()  # its columns, each as the statement that adds it


@functools.lru_cache(maxsize=16)
def _plan(script: str) -> tuple[_Statement, ...]:
    """The script's statements, with their SQLite translation (parsing costs ~0.1 s a file)."""
    import sqlglot
    from sqlglot import exp

    planned = []
    for statement in split_statements(script):
        tree = sqlglot.parse_one(statement, read="mysql")
        index = None
        table = None
        columns: list[_Column] = []
        if isinstance(tree, exp.Create) and tree.kind == "INDEX":
            index = (tree.this.args["table"].name, tree.this.name)
        elif isinstance(tree, exp.Create) and tree.kind == "TABLE":
            table = tree.this.this.name
            for column in tree.this.expressions:
                if isinstance(column, exp.ColumnDef):
                    add = f"ALTER TABLE {table} ADD COLUMN {column.sql(dialect='mysql')}"
                    columns.append(_Column(column.name, add, to_sqlite(add)))
        planned.append(_Statement(statement, to_sqlite(statement), index, table, tuple(columns)))
    return tuple(planned)


def _add_missing_columns(
    conn: sa.Connection, inspector: sa.Inspector, statement: _Statement, dialect: str
) -> bool:
    """Bring a table made by an older schema up to date: add the columns it lacks.

    The MySQL image runs mysql-init/ only on an empty volume, so a column added to the schema
    later never reaches an existing install by itself. Only nullable or defaulted columns can
    be added to a table holding rows; the schema adds no other kind (and MySQL would refuse).
    Returns whether anything was added.
    """
    assert statement.table is not None
    present = {c["name"].lower() for c in inspector.get_columns(statement.table)}
    added = False
    for column in statement.columns:
        if column.name.lower() in present:
            continue
        log.warning("schema upgrade: adding %s.%s", statement.table, column.name)
        conn.exec_driver_sql(column.sqlite if dialect == "sqlite" else column.mysql)
        added = True
    return added


def apply_schema(engine: sa.Engine, directory: Path | None = None) -> None:
    """Create the tables of mysql-init/*.sql; safe to run again on an existing schema.

    Tables use CREATE TABLE IF NOT EXISTS; an index is created only when missing (MySQL 8.4
    has no CREATE INDEX IF NOT EXISTS); a column the schema gained since an existing table was
    made is added to it (ALTER TABLE ... ADD COLUMN, as the schema defines it).
    """
    dialect = engine.dialect.name
    if dialect not in ("mysql", "sqlite"):
        raise ValueError(f"unsupported database {dialect!r}: use MySQL/MariaDB or SQLite")
    files = schema_files(directory)
    if not files:
        raise SchemaNotFoundError(f"no *.sql files in {directory or schema_dir()}")
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        existing_tables = set(inspector.get_table_names())
        for path in files:
            for statement in _plan(path.read_text(encoding="utf-8")):
                if statement.table in existing_tables:
                    if _add_missing_columns(conn, inspector, statement, dialect):
                        # Reflected before the change: reflect again on next use.
                        _reflected.pop(engine.url.render_as_string(hide_password=False), None)
                    continue
                if statement.index is not None:
                    table, name = statement.index
                    # Tables made by this call have only the indexes it made: no lookup needed.
                    if table in existing_tables and name in {
                        ix["name"] for ix in inspector.get_indexes(table)
                    }:
                        continue
                conn.exec_driver_sql(statement.sqlite if dialect == "sqlite" else statement.mysql)
    log.info("schema from %s applied to %s", [p.name for p in files], engine.url.database)


@dataclass(frozen=True)
class Tables:
    """The schema's tables, reflected from the database."""

    data: sa.Table
    log: sa.Table
    rejected: sa.Table
    staging: sa.Table
    inference_log: sa.Table


_reflected: dict[str, Tables] = {}


def tables(engine: sa.Engine) -> Tables:
    """Reflect the schema's tables (once per engine URL); fails clearly if they are missing."""
    key = engine.url.render_as_string(hide_password=False)
    if key not in _reflected:
        metadata = sa.MetaData()
        try:
            metadata.reflect(engine, only=list(TABLE_NAMES))
        except sa.exc.InvalidRequestError as exc:
            raise RuntimeError(
                f"the forest-mlops tables are missing in {engine.url.database}: "
                "run forest_mlops.database.apply_schema (or the MySQL init scripts) first"
            ) from exc
        t = metadata.tables
        _reflected[key] = Tables(
            data=t[DATA_TABLE],
            log=t[LOG_TABLE],
            rejected=t[REJECTED_TABLE],
            staging=t[STAGING_TABLE],
            inference_log=t[INFERENCE_LOG_TABLE],
        )
    return _reflected[key]


def insert_ignore(table: sa.Table) -> sa.Insert:
    """INSERT that skips rows violating a unique key: INSERT IGNORE / INSERT OR IGNORE."""
    return (
        sa.insert(table)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )


def row_hash(record: Sequence[object]) -> str:
    """SHA-256 (hex) of a typed 13-value record: a stable id for the row."""
    canonical = "|".join(str(value) for value in record)
    return hashlib.sha256(canonical.encode()).hexdigest()


def utcnow() -> dt.datetime:
    """Naive UTC (DATETIME columns hold UTC without zone)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def insert_records(
    conn: sa.Connection,
    records: Sequence[schema.Record],
    *,
    batch_number: int,
    group_number: int,
    run_id: str,
    hashes: Sequence[str] | None = None,
) -> int:
    """Insert typed records into forest_cover_data, skipping duplicates; returns rows inserted.

    Runs inside the caller's transaction; duplicates are skipped by the table's unique key
    (INSERT IGNORE / INSERT OR IGNORE), and the count comes from the driver's rowcount, which
    counts only the rows actually inserted.
    """
    hashes = hashes if hashes is not None else [row_hash(r) for r in records]
    if len(hashes) != len(records):
        raise ValueError(f"{len(records)} records but {len(hashes)} hashes")
    stored = _stored_records(conn, hashes)
    if stored:
        new = [i for i, record in enumerate(records) if record not in stored]
        records = [records[i] for i in new]
        hashes = [hashes[i] for i in new]
    if not records:
        return 0
    constants = {
        "batch_number": batch_number,
        "group_number": group_number,
        "ingestion_run_id": run_id,
        "timestamp": utcnow(),
    }
    data = tables(conn.engine).data
    if conn.dialect.name == "mysql":
        return _insert_mysql_literal(conn, data, records, hashes, constants)
    rows = [
        {**dict(zip(schema.COLUMNS, r, strict=True)), "row_hash": h, **constants}
        for r, h in zip(records, hashes, strict=True)
    ]
    return int(conn.execute(insert_ignore(data), rows).rowcount)


# Hashes per lookup: few enough round trips, statements of ~130 kB.
_LOOKUP_CHUNK: Final = 2_000


def _stored_records(conn: sa.Connection, hashes: Sequence[str]) -> set[tuple[object, ...]]:
    """The records among those with these hashes that forest_cover_data already holds.

    Skipping them before the INSERT is an optimisation: InnoDB inserts a duplicate row before
    it finds the unique key violation and then rolls it back, which costs as much as a real
    insert (bench/ingestion.py). A record is skipped only when its exact 13 values are stored,
    so a wrong hash written by some other writer can never hide a new record; the unique key
    stays the rule.
    """
    data = tables(conn.engine).data
    columns = [data.c[c] for c in schema.COLUMNS]
    found: set[tuple[object, ...]] = set()
    for start in range(0, len(hashes), _LOOKUP_CHUNK):
        chunk = hashes[start : start + _LOOKUP_CHUNK]
        query = sa.select(*columns).where(data.c.row_hash.in_(chunk))
        found.update(tuple(row) for row in conn.execute(query))
    return found


# Rows per multi-row INSERT: ~150 bytes a row keeps a statement far below MySQL's
# max_allowed_packet (16 MB on MariaDB, 64 MB on MySQL 8.4).
_MYSQL_CHUNK_ROWS: Final = 10_000


def _insert_mysql_literal(
    conn: sa.Connection,
    data: sa.Table,
    records: Sequence[schema.Record],
    hashes: Sequence[str],
    constants: dict[str, object],
) -> int:
    """Multi-row INSERT IGNORE with the values rendered as SQL literals.

    pymysql's executemany escapes every value in Python (~50 us a row, more than the server's
    work: bench/ingestion.py). Here the record values are already typed by
    schema.parse_record: integers are rendered with %d, and the strings (a few distinct
    category codes, the hex hash, the constants) go through the driver's own escaping once per
    distinct value.
    """
    dbapi_conn: Any = conn.connection.dbapi_connection
    escape = dbapi_conn.escape
    columns = [*schema.COLUMNS, "row_hash", *constants]
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    tail = ", ".join(escape(v) for v in constants.values())
    escaped: dict[str, str] = {}

    def text(value: str) -> str:
        if value not in escaped:
            escaped[value] = escape(value)
        return escaped[value]

    row_format = "(" + ", ".join(["%d"] * 10) + ", %s, %s, %d, '%s', " + tail + ")"
    inserted = 0
    for start in range(0, len(records), _MYSQL_CHUNK_ROWS):
        values = ",".join(
            row_format % (*r[:10], text(r[10]), text(r[11]), r[12], _hex(h))
            for r, h in zip(
                records[start : start + _MYSQL_CHUNK_ROWS],
                hashes[start : start + _MYSQL_CHUNK_ROWS],
                strict=True,
            )
        )
        sql = f"INSERT IGNORE INTO {data.name} ({quoted}) VALUES {values}"
        inserted += int(conn.exec_driver_sql(sql).rowcount)
    return inserted


def _hex(digest: str) -> str:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return digest


def insert_rows(
    engine: sa.Engine,
    rows: Iterable[Sequence[object]],
    *,
    batch_number: int,
    group_number: int = 0,
    run_id: str | None = None,
) -> int:
    """Validate 13-value rows (course order) and insert them; returns rows inserted.

    For filling a table outside the ingestion (tests, local loads): a bad row raises
    schema.RecordError and nothing is written. `df[list(schema.COLUMNS)].itertuples(index=False)`
    turns a DataFrame into rows.
    """
    records = [schema.parse_record(list(row)) for row in rows]
    with engine.begin() as conn:
        return insert_records(
            conn,
            records,
            batch_number=batch_number,
            group_number=group_number,
            run_id=run_id or f"manual-{uuid.uuid4().hex[:12]}",
        )


def read_training_frame(
    engine: sa.Engine, *, group_number: int | None = None, batch_number: int | None = None
) -> Any:
    """forest_cover_data as a pandas DataFrame: the 13 course columns + batch_number.

    Rows in insertion order; integer columns int64, Wilderness_Area and Soil_Type str. With
    group_number and batch_number, only the rows one batch of one group brought.
    """
    import pandas as pd

    data = tables(engine).data
    columns = [*schema.COLUMNS, "batch_number"]
    query = sa.select(*(data.c[c] for c in columns)).order_by(data.c.id)
    if group_number is not None:
        query = query.where(data.c.group_number == group_number)
    if batch_number is not None:
        query = query.where(data.c.batch_number == batch_number)
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in _INT_COLUMNS:
        frame[column] = frame[column].astype("int64")
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame
