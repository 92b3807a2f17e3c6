"""The latency histogram starts at the kernel's receipt of a request (inference_api.arrival):
time a request waits before the service's process runs is part of its latency."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from urllib.parse import urlsplit

import pytest

from inference_api import arrival
from inference_api.metrics import (
    Message,
    Receive,
    RequestMetricsMiddleware,
    Scope,
    Send,
    ServiceMetrics,
)
from tests.inference.conftest import InferenceService
from tests.inference.test_api import _metric

STOPPED_S = 0.5  # how long the service's process is kept off the CPU with a request waiting
JIFFY_S = 0.004  # TCP_INFO's resolution: a jiffy, 4 ms at this kernel's HZ=250


def _health_latency(text: str) -> tuple[float, float]:
    # In the exposition's order of labels (alphabetical).
    labels = {"endpoint": "/health", "method": "GET", "model_version": "", "status": "200"}
    return (
        _metric(text, "forest_inference_request_duration_seconds_count", **labels),
        _metric(text, "forest_inference_request_duration_seconds_sum", **labels),
    )


def test_a_request_waiting_for_a_stopped_service_is_timed_from_its_arrival(
    champion_service: InferenceService,
) -> None:
    with champion_service.client() as client:
        client.get("/health")  # the series exists before the first reading
        count_before, sum_before = _health_latency(client.get("/metrics").text)
        url = urlsplit(champion_service.url)
        with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
            # Off the CPU: the kernel takes the request's bytes, the process cannot read them.
            os.kill(champion_service.process.pid, signal.SIGSTOP)
            try:
                sent = time.monotonic()
                conn.sendall(
                    b"GET /health HTTP/1.1\r\nHost: inference\r\nConnection: close\r\n\r\n"
                )
                time.sleep(STOPPED_S)
            finally:
                os.kill(champion_service.process.pid, signal.SIGCONT)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
            waited = time.monotonic() - sent
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        count_after, sum_after = _health_latency(client.get("/metrics").text)
    # One request, timed as the client saw it less the network: without the stamp the app's
    # clock starts after SIGCONT and the observation is a few milliseconds.
    assert count_after == count_before + 1
    observed = sum_after - sum_before
    assert STOPPED_S - JIFFY_S <= observed <= waited + JIFFY_S


def test_the_stamp_is_the_kernels_receipt_of_the_last_data() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()) as client,
    ):
        conn, _ = server.accept()
        with conn:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            time.sleep(0.2)
            conn.recv(1024)
            now = time.perf_counter()
            age = now - arrival.received_at(conn, now)
    assert 0.2 - JIFFY_S <= age <= 0.25


@pytest.mark.parametrize("family", ["unix", "none"])
def test_without_tcp_info_the_stamp_is_now(family: str) -> None:
    now = time.perf_counter()
    if family == "none":
        assert arrival.received_at(None, now) == now
        return
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert arrival.received_at(left, now) == now


class _NoModel:  # what ServiceMetrics reads of a ModelHolder
    current = None

    def staleness_seconds(self) -> None:
        return None


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    del scope, receive
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _discard(message: Message) -> None:
    del message


async def _no_body() -> Message:
    return {"type": "http.request", "body": b""}


@pytest.mark.parametrize("stamped_ago_s", [None, 0.3])
def test_the_middleware_times_from_the_stamp_else_from_its_own_clock(
    stamped_ago_s: float | None,
) -> None:
    metrics = ServiceMetrics(_NoModel())  # type: ignore[arg-type]
    middleware = RequestMetricsMiddleware(_answer, metrics, ["/health"])
    state = (
        {}
        if stamped_ago_s is None
        else {arrival.ARRIVAL_STATE: time.perf_counter() - stamped_ago_s}
    )
    scope = {"type": "http", "path": "/health", "method": "GET", "state": state}
    asyncio.run(middleware(scope, _no_body, _discard))
    labels = {"endpoint": "/health", "method": "GET", "status": "200", "model_version": ""}
    observed = metrics.registry.get_sample_value(
        "forest_inference_request_duration_seconds_sum", labels
    )
    assert observed is not None
    # Unstamped (another server, a test client): the app's own span, not "since 0".
    low, high = (0.0, 0.05) if stamped_ago_s is None else (stamped_ago_s, stamped_ago_s + 0.05)
    assert low <= observed < high
