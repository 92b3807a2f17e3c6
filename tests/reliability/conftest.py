"""Fixtures for the fault tests: an S3 server that can be taken down and brought back with its
contents, an MLflow server on it that can be killed and restarted on the same port, and a
training table.

The S3 server is moto's ThreadedMotoServer in this process: its buckets live in moto's
in-process backends, so `down()` closes the port (clients get "connection refused", as when
MinIO's pod is gone) and `up()` serves the same objects again. The MLflow server is the real
`mlflow server` process of tests/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from forest_mlops import database, mlflow_server, schema
from tests.conftest import S3_TEST_KEY, MlflowServer, start_mlflow_server
from tests.support.processes import ServerProcess, free_port


class StoppableS3:
    """A moto S3 endpoint whose port can be closed and reopened, keeping its objects."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    def up(self) -> None:
        if self._server is None:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self._server.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture(scope="session")
def stoppable_s3() -> Iterator[StoppableS3]:
    s3 = StoppableS3()
    s3.up()
    yield s3
    s3.down()


@dataclass
class OutageStack:
    """An MLflow server (real process) whose artifacts live on `s3`."""

    mlflow: MlflowServer
    s3: StoppableS3
    workdir: Path

    def kill_mlflow(self) -> None:
        self.mlflow.process.kill()

    def restart_mlflow(self) -> None:
        """The same server command again: same port, backend store and bucket."""
        env = mlflow_server.server_env(
            s3_endpoint_url=self.s3.url, access_key_id=S3_TEST_KEY, secret_access_key=S3_TEST_KEY
        )
        env["AWS_DEFAULT_REGION"] = "us-east-1"
        log = self.workdir / f"mlflow-{uuid.uuid4().hex[:6]}.log"
        self.mlflow.process = ServerProcess(self.mlflow.process.argv, log_path=log, env=env)
        self.mlflow.process.wait_http(f"{self.mlflow.url}/health", timeout=120)


@pytest.fixture(scope="session")
def outage_stack(
    stoppable_s3: StoppableS3,
    make_mysql_database: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OutageStack]:
    """An MLflow server of the fault tests' own: they stop it and its S3 without disturbing
    the session's shared server."""
    workdir = tmp_path_factory.mktemp("outage-mlflow")
    server = start_mlflow_server(
        backend_url=make_mysql_database("fmrelmlflow"),
        s3_endpoint=stoppable_s3.url,
        bucket=f"reliability-{uuid.uuid4().hex[:8]}",
        log_path=workdir / "mlflow.log",
    )
    stack = OutageStack(server, stoppable_s3, workdir)
    yield stack
    stoppable_s3.up()
    stack.mlflow.process.stop()


TRAINING_ROWS = 3000


@pytest.fixture(scope="session")
def reliability_training_table(dev_csv: Path, make_train_database: Callable[[str], str]) -> str:
    """A MariaDB training table of 3,000 distinct labelled rows in 3 batches."""
    frame = pd.read_csv(dev_csv, nrows=TRAINING_ROWS * 2).drop_duplicates(list(schema.COLUMNS))
    frame = frame.head(TRAINING_ROWS)
    url = make_train_database("fmreltrain")
    engine = database.create_engine(url)
    try:
        size = -(-len(frame) // 3)
        for batch in range(3):
            part = frame.iloc[batch * size : (batch + 1) * size]
            database.insert_rows(
                engine, part[list(schema.COLUMNS)].itertuples(index=False), batch_number=batch
            )
    finally:
        engine.dispose()
    return url
