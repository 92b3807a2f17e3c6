"""Real HTTP servers for the ingestion tests: the data API process and a scripted server.

The scripted server is a real stdlib HTTP server on 127.0.0.1 that answers GET /data from a
list of prepared responses: it serves what the real API never would (malformed rows, 5xx,
truncated JSON, slow answers) so that the client's handling of them runs over real HTTP.
"""

from __future__ import annotations

import csv
import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.processes import VENV_BIN, ServerProcess, free_port


def write_dataset(source: Path, dest: Path, n_rows: int) -> list[list[str]]:
    """The first n_rows of a course-layout CSV (plain or .gz) written to dest; returns the rows."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for _, row in zip(range(n_rows), reader, strict=False)]
    with open(dest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return rows


@dataclass
class DataApi:
    process: ServerProcess
    url: str
    rows: list[list[str]]

    def restart_group(self, group: int) -> None:
        response = httpx.get(f"{self.url}/restart_data_generation", params={"group_number": group})
        response.raise_for_status()


def start_data_api(
    dataset: Path,
    rows: list[list[str]],
    workdir: Path,
    *,
    min_update_time: float,
    batches: int = 10,
    sample_fraction: float = 0.1,
    seed: int = 7,
) -> DataApi:
    """`forest-mlops api-data` as a real uvicorn process on a free port."""
    port = free_port()
    argv = [
        str(VENV_BIN / "forest-mlops"),
        "api-data",
        "--dataset", str(dataset),
        "--min-update-time", str(min_update_time),
        "--state", str(workdir / f"state-{port}.json"),
        "--port", str(port),
        "--host", "127.0.0.1",
        "--batches", str(batches),
        "--sample-fraction", str(sample_fraction),
        "--seed", str(seed),
    ]  # fmt: skip
    process = ServerProcess(argv, log_path=workdir / f"api-data-{port}.log")
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/health", timeout=90)
    return DataApi(process, url, rows)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    # Announce more bytes than are sent, then close: a truncated transfer.
    truncate: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def data_reply(group: int, batch: int, rows: list[Any], *, synthetic: bool = False) -> Reply:
    body = orjson.dumps({"group_number": group, "batch_number": batch, "data": rows})
    return Reply(body=body, headers={"X-Data-Synthetic": "true" if synthetic else "false"})


def complete_reply(group: int) -> Reply:
    message = f"All data has been collected for group {group}."
    return Reply(status=400, body=orjson.dumps({"detail": message}))


class ScriptedApi:
    """Answers each GET with the next Reply of `script`; repeats `default` when it runs out.

    GET /batches is answered apart, with `batches` each time (default 404, as the course API,
    which has no such route), so a script lists only what the tested call itself asks.
    """

    def __init__(
        self, script: list[Reply], default: Reply | None = None, batches: Reply | None = None
    ) -> None:
        self.script = list(script)
        self.default = default or Reply(status=503, body=b'{"detail": "script exhausted"}')
        self.batches = batches or Reply(status=404, body=b'{"detail": "Not Found"}')
        self.requests: list[str] = []  # every scripted GET, in order
        self.batches_requests: list[str] = []  # the GET /batches, kept apart
        self._lock = threading.Lock()
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with scripted._lock:
                    if self.path.startswith("/batches"):
                        scripted.batches_requests.append(self.path)
                        reply = scripted.batches
                    else:
                        scripted.requests.append(self.path)
                        reply = scripted.script.pop(0) if scripted.script else scripted.default
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    length = len(reply.body) * 2 if reply.truncate else len(reply.body)
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): what a slow server sees too
                if reply.truncate:
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[ScriptedApi]:
        self._thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
