"""Dashboards as code that open in Prometheus' own graph page.

Each file in charts/forest-mlops/files/prometheus/dashboards/ is one dashboard: a title, a time
range and panels (title, unit, one or more PromQL exprs). `graph_url` turns a dashboard into a
`/graph?g0.expr=...&g0.tab=0&g0.range_input=1h&g1...` address, which the classic UI of
Prometheus 2.42 (Debian's stand-in) and the 3.x UI both open as one graph per expr; NOTES.txt
builds the same address in the chart. `check_queries` runs every expr through
`/api/v1/query_range` over the dashboard's range and says which returned no series (what
`make e2e` asks of the cluster).

Perses (the chart's prometheus.perses) serves the same files as titled dashboards; this
module's graph-page links are the fallback, and forest_mlops.monitoring.perses checks Perses.

    python -m forest_mlops.monitoring.dashboards urls  http://localhost:9090
    python -m forest_mlops.monitoring.dashboards check http://localhost:9090
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import httpx
import yaml

DASHBOARDS_DIR: Final = (
    Path(__file__).resolve().parents[3] / "charts" / "forest-mlops" / "files" / "prometheus"
    / "dashboards"
)  # fmt: skip
# Prometheus' range_input syntax: a number and one unit (the UIs offer 1h, 6h, 1d, 2w...).
_RANGE: Final = re.compile(r"([0-9]+)([smhdwy])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# Points per query_range: enough to see a shape, few enough to stay under Prometheus' 11,000.
POINTS: Final = 240


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    exprs: tuple[str, ...]


@dataclass(frozen=True)
class Dashboard:
    name: str  # the file's stem: inference, collection...
    title: str
    range: str  # Prometheus range_input, e.g. 1h
    panels: tuple[Panel, ...]

    @property
    def exprs(self) -> list[str]:
        return [expr for panel in self.panels for expr in panel.exprs]

    @property
    def range_seconds(self) -> int:
        return range_seconds(self.range)


def range_seconds(value: str) -> int:
    match = _RANGE.fullmatch(value)
    if not match:
        raise ValueError(f"range {value!r} is not a Prometheus range such as 1h or 6h")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def load_dashboard(path: Path) -> Dashboard:
    data = yaml.safe_load(path.read_text())
    panels = tuple(
        Panel(str(p["title"]), str(p["unit"]), tuple(str(e).strip() for e in p["exprs"]))
        for p in data["panels"]
    )
    dashboard = Dashboard(path.stem, str(data["title"]), str(data["range"]), panels)
    range_seconds(dashboard.range)  # fails on a malformed range at load, not in the browser
    if not panels or any(not p.exprs for p in panels):
        raise ValueError(f"{path}: a dashboard needs panels, and each panel an expr")
    return dashboard


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Dashboard]:
    return [load_dashboard(path) for path in sorted(directory.glob("*.yaml"))]


def graph_url(base_url: str, dashboard: Dashboard) -> str:
    """The Prometheus graph page showing every expr of the dashboard, in panel order."""
    params: list[tuple[str, str]] = []
    for i, expr in enumerate(dashboard.exprs):
        params += [(f"g{i}.expr", expr), (f"g{i}.tab", "0"), (f"g{i}.range_input", dashboard.range)]
    return f"{base_url.rstrip('/')}/graph?{urlencode(params)}"


@dataclass(frozen=True)
class QueryCheck:
    dashboard: str
    panel: str
    expr: str
    series: int  # series the range query returned
    error: str | None = None  # Prometheus' error, or the HTTP failure

    @property
    def empty(self) -> bool:
        return self.error is not None or self.series == 0


def check_queries(
    base_url: str,
    dashboards: Sequence[Dashboard] | None = None,
    *,
    end: float | None = None,
    http: httpx.Client | None = None,
) -> list[QueryCheck]:
    """Run every panel's exprs via /api/v1/query_range over its dashboard's range ending at
    `end` (default now); one QueryCheck per expr. `[c for c in result if c.empty]` are the
    panels that would show nothing."""
    dashboards = load_dashboards() if dashboards is None else dashboards
    end = time.time() if end is None else end
    client = http or httpx.Client(timeout=30)
    checks = []
    try:
        for dashboard in dashboards:
            start = end - dashboard.range_seconds
            step = max(15, dashboard.range_seconds // POINTS)
            for panel in dashboard.panels:
                for expr in panel.exprs:
                    params = {"query": expr, "start": start, "end": end, "step": step}
                    series, error = _query_range(client, base_url, params)
                    checks.append(QueryCheck(dashboard.name, panel.title, expr, series, error))
    finally:
        if http is None:
            client.close()
    return checks


def _query_range(
    client: httpx.Client, base_url: str, params: dict[str, Any]
) -> tuple[int, str | None]:
    try:
        response = client.get(f"{base_url.rstrip('/')}/api/v1/query_range", params=params)
    except httpx.HTTPError as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    if response.status_code != 200 or body.get("status") != "success":
        return 0, str(body.get("error") or f"HTTP {response.status_code}")
    return len(body["data"]["result"]), None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forest_mlops.monitoring.dashboards")
    parser.add_argument("command", choices=["urls", "check"])
    parser.add_argument("base_url", help="Prometheus, e.g. http://localhost:9090")
    args = parser.parse_args(argv)
    dashboards = load_dashboards()
    if args.command == "urls":
        for dashboard in dashboards:
            sys.stdout.write(f"{dashboard.title}: {graph_url(args.base_url, dashboard)}\n")
        return 0
    empty = [c for c in check_queries(args.base_url, dashboards) if c.empty]
    for c in empty:
        sys.stdout.write(
            f"no data: {c.dashboard} / {c.panel}: {c.expr} ({c.error or '0 series'})\n"
        )
    return 1 if empty else 0


if __name__ == "__main__":
    raise SystemExit(main())
