"""The data API contract over real HTTP against `forest-mlops api-data` processes.

Each test takes its own group on a shared server, so the tests do not depend on one another's
order. Windows are real seconds (MIN_UPDATE_TIME=1), not a patched clock.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from forest_mlops import synthetic
from tests.support.processes import VENV_BIN, ServerProcess, free_port

N_ROWS = 2003  # batch_size 200, the last batch 203 rows, 20 rows per response
WINDOW = 1.0
GROUPS = 12
SAMPLE = 20


@dataclass
class Server:
    process: ServerProcess
    url: str
    state_path: Path

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=30)

    def data(self, group: int) -> httpx.Response:
        return self.get("/data", group_number=group)

    def batch_of(self, group: int) -> int:
        response = self.data(group)
        assert response.status_code == 200, response.text
        batch: int = response.json()["batch_number"]
        return batch


def start_server(
    dataset: Path,
    state_path: Path,
    *,
    window: float = WINDOW,
    env: dict[str, str] | None = None,
    via_env: bool = False,
    log_name: str = "api-data.log",
) -> Server:
    """Start `forest-mlops api-data`, configured by flags or (as in the image) by env only."""
    port = free_port()
    options = {
        "API_DATA_DATASET": ("--dataset", str(dataset)),
        "MIN_UPDATE_TIME": ("--min-update-time", str(window)),
        "API_DATA_STATE_PATH": ("--state", str(state_path)),
        "API_DATA_PORT": ("--port", str(port)),
        "API_DATA_HOST": ("--host", "127.0.0.1"),
        "API_DATA_GROUPS": ("--groups", str(GROUPS)),
        "API_DATA_SEED": ("--seed", "7"),
    }
    argv = [str(VENV_BIN / "forest-mlops"), "api-data"]
    full_env = dict(env or {})
    for name, (flag, value) in options.items():
        if via_env:
            full_env[name] = value
        else:
            argv += [flag, value]
    process = ServerProcess(argv, log_path=state_path.parent / log_name, env=full_env)
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/health", timeout=90)
    return Server(process, url, state_path)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract-data") / "contract_synthetic.csv.gz"
    return synthetic.write_csv(path, n_rows=N_ROWS, seed=5)


@pytest.fixture(scope="module")
def batch_rows() -> list[set[tuple[str, ...]]]:
    rows = [tuple(row) for row in synthetic.generate_rows(N_ROWS, seed=5)]
    size = N_ROWS // 10
    return [set(rows[i * size : N_ROWS if i == 9 else (i + 1) * size]) for i in range(10)]


@pytest.fixture(scope="module")
def server(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state_dir = tmp_path_factory.mktemp("contract-state")
    srv = start_server(dataset, state_dir / "state.json")
    yield srv
    srv.process.stop()


def wait_past_window(answered: float, window: float = WINDOW) -> None:
    """Sleep until a window has passed since `answered`, taken after the response that made
    the change: the server's change time is between the request and that moment."""
    time.sleep(max(0.0, answered + window + 0.05 - time.monotonic()))


def test_root_greets_and_says_the_data_is_synthetic(server: Server) -> None:
    body = server.get("/").json()
    assert body["message"].startswith("Forest Cover Type batch data API")
    assert body["synthetic"] is True
    assert (body["groups"], body["batches"]) == (GROUPS, 10)


def test_first_request_serves_batch_0_with_a_sample_of_its_rows(
    server: Server, batch_rows: list[set[tuple[str, ...]]]
) -> None:
    response = server.data(1)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-data-synthetic"] == "true"
    body = response.json()
    assert list(body) == ["group_number", "batch_number", "data"]
    assert (body["group_number"], body["batch_number"]) == (1, 0)
    assert len(body["data"]) == SAMPLE
    assert len({tuple(r) for r in body["data"]}) == SAMPLE  # sampled without replacement
    for row in body["data"]:
        assert len(row) == 13 and all(isinstance(v, str) for v in row)
        assert tuple(row) in batch_rows[0]


def test_same_batch_inside_the_window_then_the_next(server: Server) -> None:
    started = time.monotonic()
    first = server.data(2).json()
    answered = time.monotonic()
    second = server.data(2).json()
    inside = time.monotonic() - started
    assert inside < WINDOW, f"the two requests took {inside:.2f} s, longer than the window"
    assert first["batch_number"] == second["batch_number"] == 0
    assert first["data"] != second["data"]  # a fresh sample each time
    wait_past_window(answered)
    assert server.batch_of(2) == 1
    moved = time.monotonic()
    assert server.batch_of(2) == 1  # the window starts again at the change
    wait_past_window(moved)
    assert server.batch_of(2) == 2


def test_every_batch_once_then_400_all_data_collected(
    server: Server, batch_rows: list[set[tuple[str, ...]]]
) -> None:
    seen = []
    for expected in range(10):
        body = server.data(3).json()
        changed = time.monotonic()
        seen.append(body["batch_number"])
        assert all(tuple(row) in batch_rows[expected] for row in body["data"])
        if expected == 9:
            # the last batch also takes the remainder: rows 1800..2002
            assert len(body["data"]) == SAMPLE
        wait_past_window(changed)
    assert seen == list(range(10))
    response = server.data(3)
    assert response.status_code == 400
    assert "All data has been collected for group 3" in response.json()["detail"]
    assert server.data(3).status_code == 400  # and it stays so
    state = server.get("/batches").json()["groups"][2]
    assert (state["batch_number"], state["status"]) == (9, "all data collected")


def test_restart_puts_the_group_back_to_batch_0(server: Server) -> None:
    assert server.batch_of(4) == 0
    wait_past_window(time.monotonic())
    assert server.batch_of(4) == 1
    server.data(8)
    other_before = server.get("/batches").json()["groups"][7]
    response = server.get("/restart_data_generation", group_number=4)
    assert response.status_code == 200
    assert response.json()["group_number"] == 4
    assert server.get("/batches").json()["groups"][3]["batch_number"] is None
    assert server.batch_of(4) == 0
    assert server.get("/batches").json()["groups"][7] == other_before  # others untouched


def test_metrics_say_when_each_batch_began_and_forget_it_on_restart(server: Server) -> None:
    """The start time the "data API not advancing" alert reads (docs/OBSERVABILITY.md)."""

    def started_at() -> float | None:
        found = re.search(
            r'^api_data_batch_started_timestamp_seconds\{group="11"\} (\S+)$',
            server.get("/metrics").text,
            re.MULTILINE,
        )
        return None if found is None else float(found.group(1))

    assert started_at() is None  # not started: no made-up start time
    before = time.time()
    assert server.batch_of(11) == 0
    first = started_at()
    assert first is not None and before - 1 <= first <= time.time()
    wait_past_window(time.monotonic())
    assert server.batch_of(11) == 1
    second = started_at()
    assert second is not None and second >= first + WINDOW
    assert server.get("/restart_data_generation", group_number=11).status_code == 200
    assert started_at() is None


@pytest.mark.parametrize("value", ["0", "13", "-1", "99999999999"])
def test_group_outside_range_is_400(server: Server, value: str) -> None:
    for path in ("/data", "/restart_data_generation"):
        response = server.get(path, group_number=value)
        assert response.status_code == 400, (path, response.text)
        assert f"groups are 1..{GROUPS}" in response.json()["detail"]


@pytest.mark.parametrize("value", ["abc", "1.5", ""])
def test_non_integer_group_is_422(server: Server, value: str) -> None:
    assert server.get("/data", group_number=value).status_code == 422
    assert httpx.get(f"{server.url}/data", timeout=10).status_code == 422  # missing


def burst(server: Server, group: int, n: int = 50) -> tuple[list[int], float]:
    """`n` simultaneous /data requests (connections opened first, released by a barrier)."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    with httpx.Client(base_url=server.url, limits=limits, timeout=60) as client:
        barrier = threading.Barrier(n)

        def warm(_: int) -> None:
            client.get("/health")
            barrier.wait()  # all n connections are open at once, so all stay in the pool

        def ask(_: int) -> httpx.Response:
            barrier.wait()
            return client.get("/data", params={"group_number": group})

        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(warm, range(n)))
            started = time.monotonic()
            responses = list(pool.map(ask, range(n)))
            elapsed = time.monotonic() - started
    assert {r.status_code for r in responses} == {200}, {r.text for r in responses}
    return sorted(r.json()["batch_number"] for r in responses), elapsed


# The bursts run against a server with a window far longer than a burst takes even on a loaded
# machine, so every burst falls inside one window and must see exactly one batch.
BURST_WINDOW = 8.0


@pytest.fixture(scope="module")
def burst_server(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state_dir = tmp_path_factory.mktemp("burst-state")
    srv = start_server(dataset, state_dir / "state.json", window=BURST_WINDOW)
    yield srv
    srv.process.stop()


def assert_one_batch_per_burst(
    server: Server, group: int, batches: list[int], first: int, elapsed: float
) -> None:
    # A burst longer than the window could legitimately see two batches; then this test would
    # prove nothing, so that is a failure of the set-up, not a pass.
    assert elapsed < BURST_WINDOW, f"the burst took {elapsed:.1f} s, longer than the window"
    # All 50 saw the same batch, the one after `first - 1`, and the group stayed on it.
    assert batches == [first] * len(batches)
    assert server.get("/batches").json()["groups"][group - 1]["batch_number"] == first


def test_50_concurrent_requests_on_a_fresh_group_start_it_once(burst_server: Server) -> None:
    batches, elapsed = burst(burst_server, 5)
    assert_one_batch_per_burst(burst_server, 5, batches, 0, elapsed)


def test_50_concurrent_requests_at_the_window_edge_advance_exactly_once(
    burst_server: Server,
) -> None:
    assert burst_server.batch_of(6) == 0
    wait_past_window(time.monotonic(), window=BURST_WINDOW)
    batches, elapsed = burst(burst_server, 6)
    assert_one_batch_per_burst(burst_server, 6, batches, 1, elapsed)


def test_health_ready_metrics_and_batches(server: Server) -> None:
    assert server.get("/health").json() == {"status": "ok"}
    ready = server.get("/ready").json()
    assert ready["status"] == "ready" and ready["rows"] == N_ROWS
    server.data(7)
    layout = server.get("/batches").json()
    assert (layout["batch_size"], layout["sample_size"]) == (200, SAMPLE)
    assert layout["batch_bounds"][9] == {
        "batch_number": 9,
        "start": 1800,
        "stop": 2003,
        "rows": 203,
    }
    assert [g["group_number"] for g in layout["groups"]] == list(range(1, GROUPS + 1))
    metrics = server.get("/metrics").text
    assert 'api_data_requests_total{endpoint="/data",status="200"}' in metrics
    assert 'api_data_current_batch{group="7"} 0.0' in metrics
    assert f"api_data_window_seconds {WINDOW}" in metrics
    assert "api_data_batches 10.0" in metrics
    assert 'api_data_rows_served_total{group="7"}' in metrics
    server.get("/data", group_number="abc")
    assert 'api_data_requests_total{endpoint="/data",status="422"}' in server.get("/metrics").text


def test_distinct_rows_served_are_the_rows_the_group_received(server: Server) -> None:
    """A client's store is compared with this figure (the e2e run does so with MySQL); it
    counts each record once, across batches and across a restart of the group."""
    received: set[tuple[str, ...]] = set()
    requests = 0
    for _ in range(2):
        for _ in range(6):
            answer = server.data(9)
            assert answer.status_code == 200, answer.text
            received.update(tuple(row) for row in answer.json()["data"])
            requests += 1
        wait_past_window(time.monotonic())  # the next round serves another batch
    assert server.get("/restart_data_generation", group_number=9).status_code == 200
    answer = server.data(9)
    received.update(tuple(row) for row in answer.json()["data"])
    requests += 1
    # repeats happened (6 samples of 20 from 200 rows), and each row counts once
    assert len(received) < requests * SAMPLE
    layout = server.get("/batches").json()
    assert layout["rows_served_since"] <= time.time()
    counts = {g["group_number"]: g["rows_served_distinct"] for g in layout["groups"]}
    assert counts[9] == len(received)
    assert counts[10] == 0
    metrics = server.get("/metrics").text
    assert f'api_data_distinct_rows_served{{group="9"}} {float(len(received))}' in metrics


def test_state_survives_kill_9_and_a_new_process(
    dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state_path = tmp_path_factory.mktemp("restart-state") / "state.json"
    first = start_server(dataset, state_path)
    try:
        assert first.batch_of(1) == 0
        wait_past_window(time.monotonic())
        assert first.batch_of(1) == 1
        before = first.get("/batches").json()["groups"][0]
    finally:
        first.process.kill()  # SIGKILL: no chance to save anything at shutdown
    second = start_server(dataset, state_path, log_name="api-data-2.log")
    try:
        after = second.get("/batches").json()["groups"][0]
        # The distinct-rows count is this process's (api_data.served): it starts again.
        assert after.pop("rows_served_distinct") == 0 < before.pop("rows_served_distinct")
        assert after == before
        # The window kept running while the server was down: the next request moves on.
        assert second.batch_of(1) == 2
        assert second.get("/batches").json()["groups"][1]["batch_number"] is None
    finally:
        second.process.stop()


def test_corrupt_state_is_moved_aside_and_restart_needs_the_token(
    dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state_dir = tmp_path_factory.mktemp("corrupt-state")
    state_path = state_dir / "state.json"
    state_path.write_text('{"version": 1, "groups": {"1": {"batch_number": 3, "chan')
    token = "contract-test-token"  # a test value, not a credential
    # Configured by the environment alone, as the image and the chart run it.
    srv = start_server(dataset, state_path, env={"API_DATA_RESTART_TOKEN": token}, via_env=True)
    try:
        aside = list(state_dir.glob("state.json.corrupt-*"))
        assert len(aside) == 1
        assert aside[0].read_text().endswith('"chan')  # kept for a human to look at
        assert "is not a valid state file" in srv.process.log_tail()
        assert srv.batch_of(1) == 0  # started fresh
        assert srv.get("/").json()["groups"] == GROUPS  # API_DATA_GROUPS was read
        assert json.loads(state_path.read_text())["groups"]["1"]["batch_number"] == 0

        restart = f"{srv.url}/restart_data_generation"
        assert httpx.get(restart, params={"group_number": 1}).status_code == 401
        wrong = httpx.get(
            restart, params={"group_number": 1}, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        right = httpx.get(
            restart, params={"group_number": 1}, headers={"Authorization": f"Bearer {token}"}
        )
        assert right.status_code == 200
        assert srv.get("/batches").json()["groups"][0]["batch_number"] is None
    finally:
        srv.process.stop()


def test_a_bad_dataset_stops_the_start_naming_the_line(tmp_path: Path) -> None:
    import subprocess

    bad = tmp_path / "bad.csv"
    lines = synthetic.generate_lines(30, seed=1)
    lines[16] = lines[16].replace("Rawah", "Mordor").replace("Cache", "Mordor")
    lines[16] = lines[16].replace("Commanche", "Mordor").replace("Neota", "Mordor")
    from forest_mlops.dataset import write_lines

    write_lines(bad, lines)
    result = subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "api-data", "--dataset", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"{bad}, line 18: Wilderness_Area: unknown area 'Mordor'" in result.stderr
