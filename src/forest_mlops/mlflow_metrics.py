"""MLflow's request metrics on a port of their own, without MLflow's login.

`mlflow server --expose-prometheus DIR` (forest_mlops.mlflow_server) counts every request with
prometheus_flask_exporter in prometheus_client's multiprocess mode: each server worker writes
its samples to files in DIR and the server's /metrics sums them. That route sits behind the
basic-auth app like every other one, so scraping it would give Prometheus an MLflow login, and
every login may read every run and model (default_permission READ, forest_mlops.mlflow_auth).

The chart runs this instead, in a sidecar sharing DIR: prometheus_client's own
MultiProcessCollector reads the same files and serves them on a port that only Prometheus may
reach (the mlflow NetworkPolicy). The samples are the server's: tests/test_mlflow_auth.py
compares this endpoint with the logged-in /metrics of a real server.

Files of a server process that restarted stay in DIR (an emptyDir outlives its containers):
their counters are summed with the new process's, so the series go on rising instead of
resetting, which rate() reads the same.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

# The sidecar's port (the chart's `metrics` container port, Prometheus' job `mlflow`).
DEFAULT_PORT = 9102


def registry_for(directory: Path) -> CollectorRegistry:
    """A registry whose collection reads the server's multiprocess files in `directory`."""
    if not directory.is_dir():
        raise ValueError(
            f"MLflow metrics directory {directory} does not exist: it is the one given to "
            "`mlflow server --expose-prometheus` (the chart mounts it into both containers)"
        )
    # Imported here: the CLI reads DEFAULT_PORT in every image, prometheus_client is the server's.
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def serve(directory: Path, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
    """Serve `directory`'s samples at http://host:port/metrics until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    registry = registry_for(directory)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("serving the MLflow server's metrics from %s on %s:%d", directory, host, port)
    stop.wait()
    server.shutdown()
    thread.join(5)
