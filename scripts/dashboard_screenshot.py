"""Save a PNG of one dashboard as Perses or Prometheus' graph page shows it, with headless Chromium.

    .venv/bin/python scripts/dashboard_screenshot.py --perses http://localhost:8080 \
        [--project forest-mlops] --dashboard inference [--out docs/img/dashboard-inference.png]
    .venv/bin/python scripts/dashboard_screenshot.py --prometheus http://localhost:9090 \
        --dashboard inference [--out docs/img/dashboard-inference.png]

Needs Debian's chromium (/usr/bin/chromium; .ci/run installs it) and the dev dependencies
(playwright, driving that binary: `npx playwright install` cannot download browsers here). The
default output is docs/img/dashboard-<name>.png. Exit 1 when the page has an error banner.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forest_mlops.monitoring.dashboards import DASHBOARDS_DIR, graph_url, load_dashboard
from forest_mlops.monitoring.perses import DEFAULT_PROJECT, dashboard_url

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# As the page tests launch it (tests/inference/test_page.py): no sandbox in containers, no GPU,
# no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]


def screenshot(
    url: str, out: Path, *, width: int = 1400, chromium: str = CHROMIUM, perses: bool = False
) -> None:
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            # networkidle: the graph page fetches each query after it renders its shell.
            page.goto(url, wait_until="networkidle", timeout=60_000)
            if perses:
                # Perses loads its plugins' bundles, then each panel queries through the
                # proxy: wait for the charts' canvases (ECharts) to be drawn.
                page.locator("canvas").first.wait_for(state="visible", timeout=60_000)
                page.wait_for_load_state("networkidle", timeout=60_000)
                page.wait_for_timeout(2000)
            else:
                page.wait_for_timeout(1000)  # the charts draw after their data arrives
            page.screenshot(path=str(out), full_page=True)
            # The page keeps empty, hidden alert boxes: only ones with text are errors.
            alerts = '[role="alert"]' if perses else ".alert-danger"
            errors = [t for t in page.locator(alerts).all_inner_texts() if t.strip()]
        finally:
            browser.close()
    if errors:
        raise RuntimeError(f"the page shows errors: {errors}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", help="base URL, e.g. http://localhost:9090")
    source.add_argument("--perses", help="base URL, e.g. http://localhost:8080")
    parser.add_argument("--project", default=DEFAULT_PROJECT, help="the Perses project")
    parser.add_argument(
        "--dashboard", default="inference", help="a file stem in the chart's dashboards/"
    )
    parser.add_argument("--out", type=Path, help="PNG path (default docs/img/dashboard-<name>.png)")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args(argv)
    dashboard = load_dashboard(DASHBOARDS_DIR / f"{args.dashboard}.yaml")
    out = args.out or REPO_ROOT / "docs" / "img" / f"dashboard-{dashboard.name}.png"
    try:
        if args.perses:
            url = dashboard_url(args.perses, dashboard.name, args.project)
            screenshot(url, out, width=args.width, perses=True)
        else:
            screenshot(graph_url(args.prometheus, dashboard), out, width=args.width)
    except RuntimeError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(f"{out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
