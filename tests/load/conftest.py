"""Fixtures of the load test's tests: a real uvicorn server standing in for inference's
/predict (tests/load/predict_stub.py), and Locust run headless against it with the Job's own
arguments (forest_mlops.load.job.load_job)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from forest_mlops.load import job
from tests.inference import models
from tests.support.processes import VENV_BIN, ServerProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO_ROOT / "src/forest_mlops/load/locustfile.py"


@pytest.fixture(scope="session")
def predict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """Factory: a uvicorn process serving predict_stub on a free port; returns its URL."""
    started: list[ServerProcess] = []

    def start(status: int | None = None, arrivals: Path | None = None, delay_s: float = 0.0) -> str:
        port = free_port()
        argv = [
            str(VENV_BIN / "uvicorn"), "tests.load.predict_stub:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        env = {"FOREST_STUB_STATUS": str(status)} if status else {}
        if arrivals is not None:
            env["FOREST_STUB_ARRIVALS"] = str(arrivals)
        if delay_s:
            env["FOREST_STUB_DELAY"] = str(delay_s)
        log = tmp_path_factory.mktemp("predict-stub") / "uvicorn.log"
        process = ServerProcess(argv, log_path=log, env=env, cwd=REPO_ROOT)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        process.wait_http(f"{url}/health", timeout=60)
        return url

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def real_records(dev_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 rows of the dev sample as the JSON-lines file FOREST_LOAD_RECORDS reads."""
    frame = models.read_rows(dev_csv, 500)
    path = tmp_path_factory.mktemp("load") / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")))
    return path


def job_args(url: str, *, rate: float, duration_s: int) -> list[str]:
    """The load Job's Locust arguments, with the locustfile of this checkout and `url` as the
    host instead of the in-cluster Service."""
    return job.locust_args(url, rate=rate, duration_s=duration_s, locustfile=str(LOCUSTFILE))


def run_locust(
    url: str, *, rate: float, duration_s: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Locust as the Job runs it, as a process of its own: Locust patches the standard library
    with gevent on import, which must not happen inside pytest."""
    return subprocess.run(
        [str(VENV_BIN / "locust"), *job_args(url, rate=rate, duration_s=duration_s)],
        capture_output=True,
        text=True,
        timeout=duration_s + 90,
        check=True,
        env={**_base_env(), **(env or {})},
        cwd=REPO_ROOT,
    )


def _base_env() -> dict[str, Any]:
    import os

    return dict(os.environ)
