"""Prometheus metrics of the data API, in a registry of its own per app instance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "api_data_requests",
            "HTTP requests by endpoint (route template) and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.current_batch = Gauge(
            "api_data_current_batch",
            "Batch each group is on (-1: not started)",
            ["group"],
            registry=self.registry,
        )
        # With the two gauges below, what an alert needs to tell a stalled group from one
        # between batches or one that has every batch: when its batch began, how long a batch
        # lasts and how many there are (charts/forest-mlops/files/prometheus/rules/data.yaml).
        self.batch_started = Gauge(
            "api_data_batch_started_timestamp_seconds",
            "When each group's current batch began (Unix time; absent before the group starts)",
            ["group"],
            registry=self.registry,
        )
        self.window_seconds = Gauge(
            "api_data_window_seconds",
            "Seconds a batch stays current for a group (MIN_UPDATE_TIME)",
            registry=self.registry,
        )
        self.batches = Gauge(
            "api_data_batches",
            "Batches each group is served, 0 to batches - 1",
            registry=self.registry,
        )
        self.rows_served = Counter(
            "api_data_rows_served",
            "Rows sent in /data responses",
            ["group"],
            registry=self.registry,
        )
        self.distinct_rows_served = Gauge(
            "api_data_distinct_rows_served",
            "Distinct records sent to each group in /data responses since the process started",
            ["group"],
            registry=self.registry,
        )
        self.all_collected = Counter(
            "api_data_all_data_collected",
            "/data requests refused because the group had every batch",
            ["group"],
            registry=self.registry,
        )


class RequestCounter:
    """ASGI middleware counting responses by route template, so paths cannot explode labels."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
