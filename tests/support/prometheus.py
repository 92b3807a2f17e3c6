"""A real Prometheus server (Debian's package, as .ci/run installs it) over series written
beforehand: OpenMetrics text with timestamps, backfilled with `promtool tsdb create-blocks-from
openmetrics`, so that a test queries known history through the real HTTP API and PromQL."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support import missing
from tests.support.processes import ServerProcess, free_port

PROMTOOL_HINT = "apt-get install prometheus: Debian's package ships promtool; .ci/run installs it"


def promtool() -> str:
    return missing.tool("promtool", hint=PROMTOOL_HINT)


@contextlib.contextmanager
def backfilled(root: Path, openmetrics: str, *flags: str) -> Iterator[str]:
    """Prometheus serving `openmetrics` (ending with "# EOF") from `root`, started with the
    extra command-line `flags`; yields its URL."""
    binary = missing.tool("prometheus", hint=PROMTOOL_HINT)
    (root / "data.om").write_text(openmetrics)
    data = root / "data"
    made = subprocess.run(
        [promtool(), "tsdb", "create-blocks-from", "openmetrics", "data.om", str(data)],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    process = ServerProcess(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            *flags,
        ],
        log_path=root / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/-/ready", timeout=60)
        yield url
    finally:
        process.stop()
