"""Fixtures for real services: MariaDB and PostgreSQL databases, an S3 server (moto) and an
MLflow server.

MariaDB and PostgreSQL are the machine's servers (.ci/run starts both), MLflow is a real
`mlflow server` process started with the same command the Helm chart renders
(forest_mlops.mlflow_server), and S3 is moto's server in its own `moto_server` process, standing
in for MinIO. Airflow's metadata DB is SQLite (pytest_configure), except in the chart's
config-parity test, which runs Airflow on PostgreSQL as the chart does
(tests/charts/airflow/test_airflow_parity.py). Every stand-in of the suite is listed in
docs/RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from forest_mlops import mlflow_server
from tests.support import missing
from tests.support.processes import VENV_BIN, ServerProcess, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DEV_CSV = REPO_ROOT.parent / "shared" / "data" / "covertype_dev.csv.gz"
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
# Debian's browser, driven by Playwright in tests/inference/test_page.py.
CHROMIUM = Path("/usr/bin/chromium")
# Root on the local MariaDB, as on the CI machines; override to point elsewhere.
MYSQL_ADMIN_URL = os.environ.get("FOREST_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
# A login role with CREATEDB and CREATEROLE on the local PostgreSQL (.ci/run makes forest_test);
# override to point elsewhere. Its database is only where the admin connection lands.
POSTGRES_ADMIN_URL = os.environ.get(
    "FOREST_TEST_POSTGRES_URL",
    "postgresql+psycopg2://forest_test:forest_test@127.0.0.1:5432/postgres",
)
S3_TEST_KEY = "testing"  # moto accepts any key; these are not credentials


# MLflow's set_tracking_uri and set_registry_uri (forest_mlops.training.tracking, the extraction
# DAG's tasks run in-process by dag.test(), tests/inference/models.register) keep the URI in a
# module global and export it to os.environ for subprocesses: a test's MLflow server outlived
# it there, and later tests' children (the demo's inference, registrations in a subprocess)
# talked to a stopped server, or to whatever had taken its port (HTTP 500s from moto). Seen in
# two clean-clone make test runs; so every test and every module gets them back as it found them.
_MLFLOW_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_MLFLOW_URI_GLOBALS = (
    ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
    ("mlflow.tracking._model_registry.utils", "_registry_uri"),
)


@contextlib.contextmanager
def _mlflow_uris_kept() -> Iterator[None]:
    env = {key: os.environ.get(key) for key in _MLFLOW_URI_ENV}
    # Only modules already imported: importing MLflow here would slow every test down. One
    # imported during the block has no earlier value to keep: it goes back to unset (None).
    globals_ = {
        (module, name): getattr(sys.modules[module], name)
        for module, name in _MLFLOW_URI_GLOBALS
        if module in sys.modules
    }
    try:
        yield
    finally:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for module, name in _MLFLOW_URI_GLOBALS:
            if module in sys.modules:
                setattr(sys.modules[module], name, globals_.get((module, name)))


@pytest.fixture(autouse=True)
def _mlflow_uris_restored_per_test() -> Iterator[None]:
    with _mlflow_uris_kept():
        yield


@pytest.fixture(scope="module", autouse=True)
def _mlflow_uris_restored_per_module() -> Iterator[None]:
    """Also around a module: its module-scoped fixtures set URIs before any test's snapshot."""
    with _mlflow_uris_kept():
        yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def dev_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 75k-row real dev sample; elsewhere than CI, a seeded synthetic file of the same shape.

    The stand-in is announced in the header and the summary of the run: figures on it (model
    quality, class balance) say nothing about the real data. CI has the sample; missing there,
    it fails.
    """
    if SHARED_DEV_CSV.exists():
        return SHARED_DEV_CSV
    if missing.IN_CI:
        pytest.fail(f"CI=true but the real dev sample {SHARED_DEV_CSV} is missing", pytrace=False)
    from forest_mlops import synthetic

    path = tmp_path_factory.mktemp("data") / "covertype_synthetic.csv.gz"
    synthetic.write_csv(path, n_rows=75_000, seed=42)
    missing.notice(
        f"STAND-IN: the real dev sample {SHARED_DEV_CSV} is missing; the tests that use it ran "
        f"on 75,000 SYNTHETIC rows ({path})"
    )
    return path


def pytest_report_header(config: pytest.Config) -> list[str]:
    """What this run has of the inputs and tools that CI always has (tests/support/missing.py)."""
    found = {
        "real dev sample": SHARED_DEV_CSV.exists(),
        "../shared/schemas": SHARED_SCHEMAS.is_dir(),
        "chromium": CHROMIUM.exists(),
        "shellcheck": shutil.which("shellcheck") is not None,
    }
    absent = [name for name, ok in found.items() if not ok]
    lines = [f"CI={'true' if missing.IN_CI else 'unset'}; present: "
             + ", ".join(name for name, ok in found.items() if ok)]  # fmt: skip
    if absent:
        what = "fail" if missing.IN_CI else "skip or run on a stand-in (listed at the end)"
        lines.append(f"ABSENT: {', '.join(absent)}: the tests that need them {what}")
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if missing.NOTICES:
        terminalreporter.section("stand-ins and skipped checks", sep="=", yellow=True, bold=True)
        for line in missing.NOTICES:
            terminalreporter.write_line(line, yellow=True)


@pytest.fixture(scope="session")
def mysql_admin_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(MYSQL_ADMIN_URL, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable at {MYSQL_ADMIN_URL}: {exc}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def make_mysql_database(mysql_admin_engine: sa.Engine) -> Iterator[Callable[[str], str]]:
    """Factory: an empty, uniquely named MariaDB database; returns its SQLAlchemy URL.

    All databases made in the session are dropped at its end.
    """
    created: list[str] = []

    def make(prefix: str = "fmtest") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with mysql_admin_engine.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        created.append(name)
        return f"{MYSQL_ADMIN_URL}/{name}"

    yield make
    with mysql_admin_engine.begin() as conn:
        for name in created:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(scope="session")
def postgres_admin_engine() -> Iterator[sa.Engine]:
    """The test PostgreSQL server as its admin role; a missing server is `missing.absent`.

    AUTOCOMMIT: CREATE/DROP DATABASE cannot run inside a transaction.
    """
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    where = sa.make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)
    reason = None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if reason is not None:  # outside the except: the report is the reason, not a chained trace
        engine.dispose()
        missing.absent(
            f"a PostgreSQL server at {where}",
            hint=f"{reason}; .ci/run's PostgreSQL section starts one with role forest_test, "
            "or set FOREST_TEST_POSTGRES_URL",
        )
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def make_postgres_database(postgres_admin_engine: sa.Engine) -> Iterator[Callable[..., str]]:
    """Factory: an empty, uniquely named PostgreSQL database; returns its SQLAlchemy URL.

    With `owner` and `password`, a new login role owns the database and the URL logs in as it,
    as the postgres image makes POSTGRES_DB for POSTGRES_USER. Every database made in the
    session is dropped at its end (with FORCE: a server process may still hold a connection),
    then the roles.
    """
    databases: list[str] = []
    roles: list[str] = []
    admin_url = sa.make_url(POSTGRES_ADMIN_URL)

    def make(
        prefix: str = "fmtest", *, owner: str | None = None, password: str | None = None
    ) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        url = admin_url.set(database=name)
        with postgres_admin_engine.connect() as conn:
            if owner is not None:
                # psycopg2 fills %s in on the client, so the password is quoted even in DDL.
                conn.exec_driver_sql(f'CREATE ROLE "{owner}" LOGIN PASSWORD %s', (password,))
                roles.append(owner)
                # PostgreSQL 15: only a member of the owner role may create a database for it.
                conn.exec_driver_sql(f'GRANT "{owner}" TO CURRENT_USER')
                url = url.set(username=owner, password=password)
            conn.exec_driver_sql(
                f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else "")
            )
            databases.append(name)
        return url.render_as_string(hide_password=False)

    yield make
    with postgres_admin_engine.connect() as conn:
        for name in databases:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in roles:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto S3 server process; yields its endpoint URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = ServerProcess(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log_path=log
    )
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(f"{url}/moto-api/", timeout=60)
    yield url
    proc.stop()


def s3_client(endpoint_url: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=S3_TEST_KEY,
        aws_secret_access_key=S3_TEST_KEY,
        region_name="us-east-1",
    )


class MlflowServer:
    def __init__(self, process: ServerProcess, url: str, backend_url: str, bucket: str) -> None:
        self.process = process
        self.url = url
        self.backend_url = backend_url
        self.bucket = bucket


def start_mlflow_server(
    *,
    backend_url: str,
    s3_endpoint: str,
    bucket: str,
    log_path: Path,
    auth: bool = False,
    metrics_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> MlflowServer:
    """`auth=True` runs the basic-auth app, as the chart does: extra_env must then name its
    config (MLFLOW_AUTH_CONFIG_PATH) and Flask key (tests/test_mlflow_auth.py). `metrics_dir`
    turns on its request metrics there, as the chart does (forest_mlops.mlflow_metrics)."""
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    port = free_port()
    argv = mlflow_server.server_command(
        backend_store_uri=backend_url,
        artifacts_destination=f"s3://{bucket}/",
        host="127.0.0.1",
        port=port,
        auth=auth,
        metrics_dir=None if metrics_dir is None else str(metrics_dir),
    )
    argv[0] = str(VENV_BIN / "mlflow")
    env = mlflow_server.server_env(
        s3_endpoint_url=s3_endpoint,
        access_key_id=S3_TEST_KEY,
        secret_access_key=S3_TEST_KEY,
        extra=extra_env,
    )
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    process = ServerProcess(argv, log_path=log_path, env=env)
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/health", timeout=120)
    return MlflowServer(process, url, backend_url, bucket)


@pytest.fixture(scope="session")
def mlflow_tracking_server(
    make_mysql_database: Callable[[str], str],
    s3_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MlflowServer]:
    """A real `mlflow server` on a fresh MariaDB database with artifacts in moto S3.

    Clients use proxied artifacts (mlflow-artifacts:/), so tests need no S3 credentials.
    """
    server = start_mlflow_server(
        backend_url=make_mysql_database("fmmlflow"),
        s3_endpoint=s3_server,
        bucket=f"mlflow-{uuid.uuid4().hex[:8]}",
        log_path=tmp_path_factory.mktemp("mlflow") / "mlflow.log",
    )
    yield server
    server.process.stop()


# --- The training data schema and Airflow (added with the ingestion; the training tests reuse them)


@pytest.fixture(scope="session")
def make_train_database(make_mysql_database: Callable[[str], str]) -> Callable[[str], str]:
    """Factory: a fresh MariaDB database with the mysql-init/ schema applied; returns its URL."""
    from forest_mlops import database

    def make(prefix: str = "fmtrain") -> str:
        url = make_mysql_database(prefix)
        engine = database.create_engine(url)
        try:
            database.apply_schema(engine)
        finally:
            engine.dispose()
        return url

    return make


_AIRFLOW_TEST_HOME: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Give Airflow a throw-away home with SQLite metadata before anything imports it.

    Airflow reads AIRFLOW_HOME and its metadata URL at first import, which can happen while
    test modules are collected, so this cannot wait for a fixture.
    """
    import tempfile

    global _AIRFLOW_TEST_HOME
    _AIRFLOW_TEST_HOME = Path(tempfile.mkdtemp(prefix="forest-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_TEST_HOME)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
        f"sqlite:///{_AIRFLOW_TEST_HOME / 'airflow.db'}"
    )
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    if _AIRFLOW_TEST_HOME is not None:
        shutil.rmtree(_AIRFLOW_TEST_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's AIRFLOW_HOME with its SQLite metadata DB migrated (once, ~10 s)."""
    import subprocess

    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".forest-migrated"
    if not marker.exists():
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            output = result.stdout[-3000:] + result.stderr[-3000:]
            pytest.fail(f"airflow db migrate failed:\n{output}")
        marker.touch()
    return home
