"""The inference service when the artifact store (S3) is down while the champion alias moves.

Covered in tests/inference/test_lifecycle.py and not repeated here: the whole registry down
(test_registry_outage_keeps_the_model_serving_and_shows_staleness), corrupt and incompatible
versions (test_broken_versions_are_rejected_and_the_old_model_keeps_serving) and the swap under
load (test_hot_swap_under_load_fails_no_request).

Missing there: MLflow answers (the alias has moved) but the new version's files cannot be
downloaded. That is an outage, not a bad model: the old version must keep serving, the error
must show, the new version must not be marked rejected, and once S3 is back the service must
swap by itself, without a /reload.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from tests.inference import models
from tests.inference.test_api import EXAMPLE
from tests.reliability.conftest import OutageStack
from tests.support.processes import VENV_BIN, ServerProcess, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def service(outage_stack: OutageStack, dev_csv: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A model with v1 champion and v2 registered without alias; an inference process on it."""
    tracking = outage_stack.mlflow.url
    name = f"forest-s3-outage-{uuid.uuid4().hex[:8]}"
    frame = models.read_rows(dev_csv, 2000)
    models.register(tracking, name, models.train_pipeline(frame, seed=1, trees=5))
    models.register(tracking, name, models.train_pipeline(frame, seed=2, trees=5), alias=None)
    port = free_port()
    argv = [
        str(VENV_BIN / "forest-mlops"), "inference",
        "--host", "127.0.0.1", "--port", str(port),
        "--tracking-uri", tracking, "--model-name", name, "--poll-interval", "1",
    ]  # fmt: skip
    process = ServerProcess(argv, log_path=tmp_path / "inference.log")
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/health", timeout=90)
        wait_for(url, lambda info: info["ready"], 90, process)
        yield url, name
    finally:
        process.stop()


def model_info(url: str) -> dict[str, Any]:
    info: dict[str, Any] = httpx.get(f"{url}/model", timeout=10).json()
    return info


def wait_for(
    url: str,
    condition: Callable[[dict[str, Any]], bool],
    timeout: float,
    process: ServerProcess | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    info = model_info(url)
    while not condition(info):
        log = process.log_tail() if process else ""
        assert time.monotonic() < deadline, f"not within {timeout} s: {info}\n{log}"
        time.sleep(0.3)
        info = model_info(url)
    return info


def test_s3_down_when_the_alias_moves_keeps_the_old_model_and_recovers_alone(
    service: tuple[str, str], outage_stack: OutageStack
) -> None:
    url, name = service
    assert model_info(url)["model"]["version"] == "1"
    client = MlflowClient(outage_stack.mlflow.url)

    outage_stack.s3.down()
    try:
        client.set_registered_model_alias(name, "champion", "2")  # the registry still answers
        info = wait_for(
            url,
            lambda i: (
                i["registry"]["alias_version"] == "2"
                and i["registry"]["last_check_status"] == "unavailable"
                and (i["registry"]["staleness_seconds"] or 0) > 2
            ),
            timeout=90,
        )
        assert info["model"]["version"] == "1"
        assert info["registry"]["last_error"].startswith("downloading version 2: ")
        assert info["registry"]["rejected_versions"] == {}  # an outage is not a bad model
        with httpx.Client(base_url=url, timeout=30) as http:
            answers = [http.post("/predict", json=EXAMPLE) for _ in range(10)]
            ready = http.get("/ready")
            metrics = http.get("/metrics").text
        assert [a.status_code for a in answers] == [200] * 10
        assert {a.json()["model_version"] for a in answers} == {"1"}
        assert ready.status_code == 200
        staleness = re.search(r"^forest_inference_registry_staleness_seconds (\S+)$", metrics, re.M)
        assert staleness and float(staleness.group(1)) > 2
    finally:
        outage_stack.s3.up()

    # No /reload: the next poll downloads version 2 and swaps it in.
    info = wait_for(url, lambda i: i["model"] is not None and i["model"]["version"] == "2", 90)
    # last_error keeps the outage's message as history; the checks are healthy again.
    assert info["registry"]["last_check_status"] in ("swapped", "unchanged")
    assert info["registry"]["last_success_at"] > info["registry"]["last_error_at"]
    answer = httpx.post(f"{url}/predict", json=EXAMPLE, timeout=30)
    assert answer.status_code == 200 and answer.json()["model_version"] == "2"
