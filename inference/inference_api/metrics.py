"""Prometheus metrics of the inference service, on a registry of its own per app.

Request metrics are recorded by a pure ASGI middleware (cheaper than Starlette's
BaseHTTPMiddleware on the hot path) labelled by route, method, status and the model version that
answered (set by the prediction routes in the request's state; empty for every other request
and for predictions refused before a model was chosen); unknown paths share one label so that
scanners cannot blow up the series count.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from forest_mlops import schema

from .arrival import ARRIVAL_STATE
from .model_holder import CheckResult, ModelHolder

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Single predictions take ~1-10 ms on an idle node, tens to hundreds of ms on a busy one;
# 1,000-record batches up to ~100 ms. Prometheus' p99 interpolates linearly inside the bucket
# it falls in, so the estimate is only as good as that bucket is narrow: with the former 13
# edges (ratios up to 2.5) make e2e saw 492 ms against the 560 ms Locust measured for the same
# requests (12 % off, in the 250-500 ms bucket). Here neighbouring edges differ by at most
# 25 % from 10 ms to 1 s (41 edges; at most a few hundred series per replica with the labels).
# 0.015 is the single-record p99 objective (bench/inference.py's TARGET_SINGLE_P99_MS, and the
# objective the latency alert compares with): an edge there makes "p99 over the objective"
# exact.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009,
    0.010, 0.012, 0.015, 0.018, 0.021, 0.025, 0.030, 0.035, 0.040, 0.050, 0.060, 0.070, 0.085,
    0.100, 0.120, 0.150, 0.180, 0.210, 0.250, 0.300, 0.350, 0.400, 0.500, 0.600, 0.700, 0.850,
    1.0, 1.25, 1.5, 2.5, 5.0, 10.0,
)  # fmt: skip


REQUEST_LABELS = ("endpoint", "method", "status", "model_version")
# Where a route puts the version that answered (Starlette's request.state is scope["state"]).
MODEL_VERSION_STATE = "model_version"


class ServiceMetrics:
    def __init__(self, holder: ModelHolder) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "forest_inference_requests",
            "HTTP requests by route, method, status and the model version that answered",
            REQUEST_LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "forest_inference_request_duration_seconds",
            "HTTP request latency by route, method, status and the model version that answered",
            REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "forest_inference_predictions",
            "Predicted records by cover type",
            ["cover_type"],
            registry=self.registry,
        )
        self._prediction_children = [
            self.predictions.labels(cover_type=name) for name in schema.COVER_TYPE_NAMES
        ]
        self.registry_checks = Counter(
            "forest_inference_registry_checks",
            "Registry checks by outcome (unchanged, swapped, no_model, rejected, unavailable)",
            ["outcome"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "forest_inference_log_dropped_rows",
            "Predicted rows not written to the inference log (queue full or database errors)",
            registry=self.registry,
        )
        model_version = Gauge(
            "forest_inference_model_version",
            "Registry version of the model serving requests (0 = none loaded)",
            registry=self.registry,
        )
        model_version.set_function(lambda: _version_number(holder))
        # The registry's held-out scores of the version being served (its run's test_accuracy
        # and test_macro_f1, logged at training time): which quality answers requests now.
        for metric, label in (("test_accuracy", "accuracy"), ("test_macro_f1", "macro-F1")):
            score = Gauge(
                f"forest_inference_model_{metric}",
                f"Held-out test {label} the registry holds for the served version "
                "(NaN: none loaded, or its run has none)",
                registry=self.registry,
            )
            score.set_function(functools.partial(_training_metric, holder, metric))
        ready = Gauge(
            "forest_inference_ready",
            "1 when a model is loaded and requests can be answered",
            registry=self.registry,
        )
        ready.set_function(lambda: 0.0 if holder.current is None else 1.0)
        staleness = Gauge(
            "forest_inference_registry_staleness_seconds",
            "Seconds since the last successful registry check (NaN before the first one)",
            registry=self.registry,
        )
        staleness.set_function(lambda: _or_nan(holder.staleness_seconds()))

    def record_check(self, result: CheckResult) -> None:
        self.registry_checks.labels(outcome=result.status.value).inc()

    def record_predictions(self, class_ids: np.ndarray[Any, Any]) -> None:
        counts = np.bincount(class_ids, minlength=len(self._prediction_children))
        for child, count in zip(self._prediction_children, counts.tolist(), strict=False):
            if count:
                child.inc(count)


def _version_number(holder: ModelHolder) -> float:
    current = holder.current
    if current is None:
        return 0.0
    try:
        return float(current.version)
    except ValueError:
        return float("nan")


def _training_metric(holder: ModelHolder, name: str) -> float:
    current = holder.current
    if current is None:
        return float("nan")
    return float(current.training_metrics.get(name, float("nan")))


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by its route, from its arrival (arrival.py) to the
    app's last response message."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: Iterable[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # From the kernel's receipt of the request where the server stamped it (arrival.py: the
        # wait for a CPU and uvicorn's parsing are part of what the client waits for), else from
        # here.
        arrived = scope.get("state", {}).get(ARRIVAL_STATE)
        started = time.perf_counter() if arrived is None else arrived
        status = 500  # what the client sees when the app raises before responding

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            path = scope["path"]
            endpoint = path if path in self.routes else "other"
            version = scope.get("state", {}).get(MODEL_VERSION_STATE, "")
            labels = (endpoint, scope["method"], str(status), version)
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
