"""Fixtures of the inference tests: trained pipelines, and real `forest-mlops inference`
processes (uvicorn) serving models from the session's real MLflow server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from tests.conftest import MlflowServer
from tests.inference import models
from tests.support.processes import VENV_BIN, ServerProcess, free_port

RELOAD_TOKEN = "test-reload-token"  # a throw-away token for the test service, not a credential


@dataclass
class InferenceService:
    url: str
    model_name: str
    process: ServerProcess
    env: dict[str, str]  # the environment given on top of the test's own

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def model_info(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/model", timeout=10)
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        return info

    def wait_for(
        self, condition: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """Poll /model until condition(info) holds; fail with the last answer and the log."""
        deadline = time.monotonic() + timeout
        info = self.model_info()
        while not condition(info):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout} s; /model: {info}\n"
                    f"service log:\n{self.process.log_tail()}"
                )
            time.sleep(0.2)
            info = self.model_info()
        return info


@pytest.fixture(scope="session")
def training_frame(dev_csv: Path) -> pd.DataFrame:
    return models.read_rows(dev_csv, 3000)


@pytest.fixture(scope="session")
def holdout_frame(dev_csv: Path) -> pd.DataFrame:
    """Rows the test models never saw."""
    return models.read_rows(dev_csv, 400, skip=3000)


@pytest.fixture(scope="session")
def pipeline_v1(training_frame: pd.DataFrame) -> Pipeline:
    return models.train_pipeline(training_frame, seed=1)


@pytest.fixture(scope="session")
def pipeline_v2(training_frame: pd.DataFrame) -> Pipeline:
    return models.train_pipeline(training_frame.iloc[:1500], seed=2, trees=5)


@pytest.fixture(scope="session")
def start_inference(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., InferenceService]]:
    """Factory: start `forest-mlops inference` on a free port and wait until it answers.

    The model name is unique per service unless given, so services never see each other's
    versions. Extra keyword arguments become environment variables of the process.
    """
    started: list[ServerProcess] = []

    def start(
        tracking: MlflowServer | str,
        *,
        model_name: str | None = None,
        poll_interval: float = 1.0,
        **env: str,
    ) -> InferenceService:
        tracking_uri = tracking if isinstance(tracking, str) else tracking.url
        name = model_name or f"forest-test-{uuid.uuid4().hex[:8]}"
        port = free_port()
        argv = [
            str(VENV_BIN / "forest-mlops"),
            "inference",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tracking-uri",
            tracking_uri,
            "--model-name",
            name,
            "--poll-interval",
            str(poll_interval),
        ]
        log_path = tmp_path_factory.mktemp("inference") / "inference.log"
        process = ServerProcess(argv, log_path=log_path, env=env)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        process.wait_http(f"{url}/health", timeout=90)
        return InferenceService(url=url, model_name=name, process=process, env=env)

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def champion_service(
    mlflow_tracking_server: MlflowServer,
    start_inference: Callable[..., InferenceService],
    pipeline_v1: Pipeline,
    make_train_database: Callable[[str], str],
) -> InferenceService:
    """A service whose model has version 1 as champion, with the inference log and a reload
    token configured and a batch limit of 1,000 records."""
    name = f"forest-test-{uuid.uuid4().hex[:8]}"
    models.register(
        mlflow_tracking_server.url,
        name,
        pipeline_v1,
        metrics={"test_macro_f1": 0.5, "test_accuracy": 0.75},
    )
    service = start_inference(
        mlflow_tracking_server,
        model_name=name,
        poll_interval=30,
        INFERENCE_LOG_DATABASE_URL=make_train_database("fminflog"),
        INFERENCE_RELOAD_TOKEN=RELOAD_TOKEN,
        INFERENCE_MAX_BATCH="1000",
    )
    service.wait_for(lambda info: info["ready"], timeout=60)
    return service
