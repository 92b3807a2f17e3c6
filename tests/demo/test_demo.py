"""`forest-mlops demo --serve` end to end, in a temporary work directory.

Everything is real: the demo starts the data API and the inference service as processes,
runs both Airflow DAGs with dag.test() against SQLite metadata in the work directory, trains
into a local MLflow store, then keeps serving until it gets Ctrl-C (SIGINT), as a user would
stop it. Small settings (2-second batch windows, 2 requests each) keep it near 2 minutes.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from forest_mlops import database, dataset
from tests.support.processes import VENV_BIN, ServerProcess, free_port

pytestmark = pytest.mark.slow

SUMMARY_TIMEOUT = 360.0


def _wait_for_summary(path: Path, demo: ServerProcess, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.proc.poll() is not None:
            raise AssertionError(f"the demo exited with {demo.proc.returncode}:\n{demo.log_tail()}")
        if path.exists():
            summary: dict[str, Any] = json.loads(path.read_text())
            if summary["status"] == "serving":
                return summary
            raise AssertionError(f"summary status {summary['status']}:\n{demo.log_tail()}")
        time.sleep(1.0)
    raise AssertionError(f"no summary within {timeout:.0f} s:\n{demo.log_tail()}")


def test_demo_collects_trains_serves_and_stops_on_ctrl_c(tmp_path: Path, dev_csv: Path) -> None:
    workdir = tmp_path / "work"
    api_port, inference_port = free_port(), free_port()
    argv = [
        str(VENV_BIN / "forest-mlops"),
        "demo",
        "--workdir", str(workdir),
        "--dataset", str(dev_csv),
        "--min-update-time", "2",
        "--requests-per-window", "2",
        "--api-port", str(api_port),
        "--inference-port", str(inference_port),
        "--serve",
    ]  # fmt: skip
    # Started with SIGINT ignored, as a shell without job control starts a background command
    # (CI's did: the demo sat through Ctrl-C until the test's SIGTERM). Ctrl-C must still stop it.
    ignoring_sigint = ["sh", "-c", 'trap "" INT; exec "$@"', "demo"]
    demo = ServerProcess([*ignoring_sigint, *argv], log_path=tmp_path / "demo.log")
    try:
        summary = _wait_for_summary(workdir / "summary.json", demo, SUMMARY_TIMEOUT)

        # Collection: every batch of the group, with the requests asked for, and the counts
        # agree with the training table itself.
        collection = summary["collection"]
        assert [b["batch"] for b in collection["batches"]] == list(range(10))
        assert all(b["requests"] == 2 and b["stored"] > 0 for b in collection["batches"])
        engine = database.create_engine(f"sqlite:///{workdir / 'train.db'}")
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT COUNT(*) FROM forest_cover_data WHERE group_number = 1")
            ).scalar_one()
        engine.dispose()
        assert collection["stored_rows"] == stored > 0

        # Training: the quick profile's candidates, the winner registered and, in a fresh
        # work directory, promoted because there was no champion; synthetic data is tagged.
        training = summary["training"]
        names = [c["name"] for c in training["candidates"]]
        assert len(names) >= 3 and training["winner"] in names
        assert all("test_macro_f1" in c["metrics"] for c in training["candidates"])
        assert training["promotion"]["decision"] == "promoted_first"
        assert training["champion"]["version"] == training["registered_version"]
        assert training["synthetic"] == dataset.is_synthetic(dev_csv)
        assert summary["dataset"]["rows"] == 75_000

        # Predictions made during the run came from the champion and mostly match labels.
        predictions = summary["predictions"]
        assert len(predictions["examples"]) == 5
        assert predictions["batch"]["size"] == 1000
        assert predictions["batch"]["accuracy"] > 0.6
        champion = training["champion"]["version"]
        assert {e["model_version"] for e in predictions["examples"]} == {champion}

        # The service is still up (--serve): a prediction over HTTP.
        example = predictions["examples"][0]
        inference_url = summary["services"]["inference_url"]
        assert inference_url == f"http://127.0.0.1:{inference_port}"
        response = httpx.post(f"{inference_url}/predict", json=example["record"], timeout=30)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["cover_type"] == example["predicted"]
        assert answer["model_version"] == champion
        assert httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=10).status_code == 200

        text = demo.log_tail()
        assert "forest-mlops demo: summary" in text
        assert f"mlflow ui --backend-store-uri sqlite:///{workdir / 'mlflow' / 'mlflow.db'}" in text
        assert {"collect", "train", "inference"} <= set(summary["timings"])

        # Ctrl-C: the demo stops its services and exits cleanly.
        os.kill(demo.proc.pid, signal.SIGINT)
        # Every service gets SIGTERM at once and at most 15 s before SIGKILL
        # (forest_mlops.process.ProcessGroup.stop_all): 60 s leaves room for a loaded machine.
        # Stopped one after another they took over 60 s under a full make test (seen twice).
        stop_started = time.monotonic()
        assert demo.proc.wait(timeout=60) == 0, demo.log_tail()
        print(f"demo stopped {time.monotonic() - stop_started:.1f} s after Ctrl-C")
        for url in (f"{inference_url}/health", f"http://127.0.0.1:{api_port}/health"):
            with pytest.raises(httpx.TransportError):
                httpx.get(url, timeout=5)
        assert json.loads((workdir / "summary.json").read_text())["status"] == "done"
    finally:
        demo.stop()
