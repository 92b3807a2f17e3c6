"""The data API killed with SIGKILL in the middle of a group's collection by the ingestion code,
then started again on the same port and state file.

Covered elsewhere and not repeated here: the state file surviving kill -9 on its own
(tests/api_data/test_contract.py::test_state_survives_kill_9_and_a_new_process) and ingestion
failing cleanly while the API stays down
(tests/ingestion/test_collection.py::test_api_down_mid_collection_retries_then_fails_clearly_writing_nothing).
This test joins the two: the collection goes on through the crash and what lands in MariaDB is
every batch exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from forest_mlops import database, schema, synthetic
from forest_mlops.ingestion import CollectionComplete, FetchError, RetryPolicy, run_window
from forest_mlops.ingestion.fetch import make_client
from tests.support.processes import VENV_BIN, ServerProcess, free_port

pytestmark = pytest.mark.slow

N_ROWS = 2000  # 10 batches of 200 rows
WINDOW = 0.5  # the API's MIN_UPDATE_TIME
# One request per window, spaced so that every request finds the window over: each request
# moves the group exactly one batch on, so the batches received must be 0, 1, ..., 9.
INTERVAL = WINDOW + 0.35
GROUP = 3
# Long enough to outlast a restart of the API (a few seconds): the window that meets the crash
# retries until the new process answers.
THROUGH_A_RESTART = RetryPolicy(attempts=40, initial_wait=0.2, max_wait=0.5, timeout=5.0)
NO_RETRY = RetryPolicy(attempts=2, initial_wait=0.05, max_wait=0.05, timeout=2.0)


class DataApi:
    """`forest-mlops api-data` on a fixed port and state file, so it can be started again."""

    def __init__(self, dataset: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.argv = [
            str(VENV_BIN / "forest-mlops"), "api-data",
            "--dataset", str(dataset),
            "--min-update-time", str(WINDOW),
            "--state", str(workdir / "state.json"),
            "--port", str(self.port),
            "--host", "127.0.0.1",
            "--sample-fraction", "1.0",  # every response is the whole batch
            "--seed", "11",
        ]  # fmt: skip
        self.starts = 0
        self.process = self.start()

    def start(self) -> ServerProcess:
        self.starts += 1
        process = ServerProcess(self.argv, log_path=self.workdir / f"api-{self.starts}.log")
        process.wait_http(f"{self.url}/health", timeout=90)
        return process


def test_kill_9_mid_collection_resumes_at_the_same_batch_and_lands_each_batch_once(
    make_train_database: Callable[[str], str], tmp_path: Path
) -> None:
    dataset = synthetic.write_csv(tmp_path / "crash_synthetic.csv", n_rows=N_ROWS, seed=21)
    expected_rows = {schema.parse_record(row) for row in synthetic.generate_rows(N_ROWS, seed=21)}
    api = DataApi(dataset, tmp_path)
    engine = database.create_engine(make_train_database("fmrelcrash"))
    received: list[int] = []
    restarter: threading.Thread | None = None
    try:
        with make_client(api.url, NO_RETRY) as client:

            def window(policy: RetryPolicy, run_id: str) -> bool:
                outcome = run_window(engine, client, GROUP, policy=policy, run_id=run_id)
                if isinstance(outcome, CollectionComplete):
                    return False
                received.extend(b.batch_number for b in outcome.batches)
                return True

            for index in range(4):  # batches 0..3
                started = time.monotonic()
                assert window(NO_RETRY, f"crash-{index}")
                time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
            before = client.get("/batches").json()["groups"][GROUP - 1]
            assert before["batch_number"] == 3

            # A crash, not a shutdown. A window run while the API is gone fails, writes no row
            # and is logged as failed.
            api.process.kill()
            with pytest.raises(FetchError, match="ConnectError"):
                window(NO_RETRY, "crash-while-down")

            # The next window starts while the API is still down and keeps retrying while a
            # new process comes up on the same port and state file.
            restarter = threading.Thread(target=lambda: setattr(api, "process", api.start()))
            restarter.start()
            assert window(THROUGH_A_RESTART, "crash-through-restart")
            restarter.join(120)
            after = client.get("/batches").json()["groups"][GROUP - 1]
            assert after["batch_number"] == 4, "the group resumed where it was, not at batch 0"

            index = 0
            while True:
                time.sleep(INTERVAL)
                if not window(NO_RETRY, f"crash-after-{index}"):
                    break
                index += 1
                assert index < 20, f"the collection does not end: {received}"
    finally:
        if restarter is not None:
            restarter.join(120)
        api.process.stop()

    # Every batch arrived exactly once, in order: none skipped across the crash, none twice.
    assert received == list(range(10))
    with engine.connect() as conn:
        log = conn.execute(
            sa.text(
                "SELECT ingestion_run_id, batch_number, status, rows_received, rows_inserted "
                "FROM ingestion_log ORDER BY id"
            )
        ).all()
        per_batch = dict(
            conn.execute(
                sa.text("SELECT batch_number, COUNT(*) FROM forest_cover_data GROUP BY 1")
            ).all()
        )
    loaded = [row for row in log if row.status == "loaded"]
    assert [row.batch_number for row in loaded] == list(range(10))
    assert Counter(row.status for row in log) == {"loaded": 10, "failed": 1, "complete": 1}
    failed = next(row for row in log if row.status == "failed")
    assert (failed.ingestion_run_id, failed.rows_inserted) == ("crash-while-down", 0)
    # Each batch's 200 rows landed under their own batch number, and nothing else did.
    assert per_batch == dict.fromkeys(range(10), N_ROWS // 10)
    assert all(row.rows_inserted == row.rows_received == N_ROWS // 10 for row in loaded)
    stored = database.read_training_frame(engine)
    assert set(stored[list(schema.COLUMNS)].itertuples(index=False, name=None)) == expected_rows
    engine.dispose()
