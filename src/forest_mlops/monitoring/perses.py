"""The dashboards as Perses serves them (issue 22): the chart provisions one Perses project with
the release's Prometheus as its datasource and one dashboard per file of
charts/forest-mlops/files/prometheus/dashboards/ (generated at render time from those files,
charts/forest-mlops/charts/prometheus/templates/_helpers.tpl). `check_perses` asks a running
Perses whether that is what it holds, and runs every panel's query through Perses' own
datasource proxy (the path the browser's panels take), so that an empty panel is found without a
browser: what `make e2e` asks of the cluster.

    python -m forest_mlops.monitoring.perses check http://localhost:8080 [--project forest-mlops]
    python -m forest_mlops.monitoring.perses url   http://localhost:8080 inference

A screenshot of one dashboard: scripts/dashboard_screenshot.py --perses URL --dashboard NAME.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote

import httpx

from forest_mlops.monitoring.dashboards import (
    _UNIT_SECONDS,
    Dashboard,
    check_queries,
    load_dashboards,
)

# The chart's defaults: prometheus.perses.project (empty: the release name) and the one
# provisioned Datasource's name.
DEFAULT_PROJECT: Final = "forest-mlops"
DATASOURCE: Final = "prometheus"
_DURATION_PART: Final = re.compile(r"([0-9]+)([smhdwy])")
# The plugin kinds the generated dashboards use, and the modules that must have loaded for them.
REQUIRED_PLUGINS: Final = {
    "PrometheusDatasource",
    "PrometheusTimeSeriesQuery",
    "TimeSeriesChart",
}


def dashboard_url(base_url: str, dashboard: str, project: str = DEFAULT_PROJECT) -> str:
    """The UI page of one dashboard."""
    return f"{base_url.rstrip('/')}/projects/{quote(project)}/dashboards/{quote(dashboard)}"


def proxy_url(base_url: str, project: str = DEFAULT_PROJECT, datasource: str = DATASOURCE) -> str:
    """Prometheus' API through Perses' proxy for a project datasource (append /api/v1/...)."""
    return f"{base_url.rstrip('/')}/proxy/projects/{quote(project)}/datasources/{quote(datasource)}"


def loaded_plugins(modules: list[dict[str, Any]]) -> set[str]:
    """Plugin kinds' names of every module GET /api/v1/plugins reports as loaded."""
    names = set()
    for module in modules:
        if not (module.get("status") or {}).get("isLoaded"):
            continue
        names |= {p["spec"]["name"] for p in module.get("spec", {}).get("plugins", [])}
    return names


def duration_seconds(value: str) -> int | None:
    """Seconds of a Prometheus-style duration, compound too (1d2h), as Perses writes them."""
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def expected_panels(board: Dashboard) -> list[tuple[str, list[str]]]:
    return [(p.title, list(p.exprs)) for p in board.panels]


def served_panels(spec: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(title, queries) of a Perses dashboard's panels, in layout order."""
    panels = spec.get("panels") or {}
    refs = [
        item["content"]["$ref"].rsplit("/", 1)[-1]
        for layout in spec.get("layouts") or []
        for item in sorted(layout["spec"]["items"], key=lambda i: (i["y"], i["x"]))
    ]
    out = []
    for ref in refs:
        panel = panels[ref]["spec"]
        queries = [q["spec"]["plugin"]["spec"]["query"] for q in panel.get("queries") or []]
        out.append((panel["display"]["name"], queries))
    return out


def check_perses(
    base_url: str,
    project: str = DEFAULT_PROJECT,
    *,
    dashboards: Sequence[Dashboard] | None = None,
    end: float | None = None,
    http: httpx.Client | None = None,
) -> list[str]:
    """What is wrong with the dashboards a Perses at `base_url` serves, one line per problem
    (empty: all well): the plugins the dashboards need not loaded; a dashboard of the files
    missing, or served with another title, duration, panels or queries; a panel query that the
    datasource proxy answers with an error or no series over its dashboard's range."""
    boards = load_dashboards() if dashboards is None else list(dashboards)
    end = time.time() if end is None else end
    client = http or httpx.Client(timeout=30)
    base = base_url.rstrip("/")
    problems: list[str] = []
    try:
        response = client.get(f"{base}/api/v1/plugins")
        response.raise_for_status()
        missing = REQUIRED_PLUGINS - loaded_plugins(response.json())
        problems += [f"plugin not loaded: {name}" for name in sorted(missing)]
        response = client.get(f"{base}/api/v1/projects/{quote(project)}/dashboards")
        if response.status_code != 200:
            return [*problems, f"cannot list project {project}'s dashboards: HTTP "
                    f"{response.status_code} {response.text[:200]}"]  # fmt: skip
        served = {d["metadata"]["name"]: d["spec"] for d in response.json()}
        for board in boards:
            spec = served.get(board.name)
            if spec is None:
                problems.append(f"dashboard missing: {board.name}")
                continue
            title = (spec.get("display") or {}).get("name")
            if title != board.title:
                problems.append(f"{board.name}: title {title!r}, file says {board.title!r}")
            # Perses normalises durations (24h is stored as 1d): compare them in seconds.
            if duration_seconds(str(spec.get("duration"))) != board.range_seconds:
                problems.append(
                    f"{board.name}: duration {spec.get('duration')!r}, file says {board.range!r}"
                )
            if served_panels(spec) != expected_panels(board):
                problems.append(f"{board.name}: panels differ from the file")
        extra = set(served) - {b.name for b in boards}
        problems += [f"dashboard not in the files: {name}" for name in sorted(extra)]
        # The same range queries as against Prometheus itself, through Perses' proxy.
        for check in check_queries(proxy_url(base, project), boards, end=end, http=client):
            if check.empty:
                problems.append(
                    f"no data: {check.dashboard} / {check.panel}: {check.expr} "
                    f"({check.error or '0 series'})"
                )
    finally:
        if http is None:
            client.close()
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forest_mlops.monitoring.perses")
    parser.add_argument("command", choices=["check", "url"])
    parser.add_argument("base_url", help="Perses, e.g. http://localhost:8080")
    parser.add_argument("dashboard", nargs="?", default="inference", help="for url")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    args = parser.parse_args(argv)
    if args.command == "url":
        sys.stdout.write(dashboard_url(args.base_url, args.dashboard, args.project) + "\n")
        return 0
    problems = check_perses(args.base_url, args.project)
    for line in problems:
        sys.stdout.write(line + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
