"""The dashboards as code (charts/forest-mlops/files/prometheus/dashboards/*.yaml): every expr
parses (promtool), every metric an expr reads is exported and in docs/OBSERVABILITY.md's
inventory, the graph URLs are well-formed and NOTES.txt prints the same ones; then, against a
real local Prometheus (Debian's 2.42 binary) holding backfilled samples, `check_queries` tells
the panels with data from those without, and scripts/dashboard_screenshot.py saves a PNG that
is not blank.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from forest_mlops.monitoring import dashboards
from tests.conftest import CHROMIUM
from tests.observability import test_rules
from tests.support import missing
from tests.support.helm import REPO_ROOT, render_notes
from tests.support.processes import VENV_BIN
from tests.support.prometheus import backfilled

BOARDS = dashboards.load_dashboards()


def read_metrics(expr: str) -> set[str]:
    """Metric names an expr reads: identifiers with our prefixes, quoted label values removed."""
    unquoted = re.sub(r'"[^"]*"', '""', expr)
    return {
        token
        for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", unquoted)
        if token.startswith(test_rules.METRIC_PREFIXES)
    }


def test_the_issue_22_dashboards_are_there() -> None:
    assert {b.name for b in BOARDS} == {"airflow", "collection", "inference", "kubernetes", "model"}
    for board in BOARDS:
        assert board.title and board.panels
        assert all(p.title and p.unit and p.exprs for p in board.panels)


def test_every_expr_parses(tmp_path: Path) -> None:
    # promtool parses PromQL as part of checking a rule file: one recording rule per expr.
    exprs = [expr for board in BOARDS for expr in board.exprs]
    rules = [{"record": f"dashboard_expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = test_rules.run([test_rules.promtool(), "check", "rules", str(path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(exprs)} rules found" in proc.stdout


def test_every_metric_an_expr_reads_is_exported_and_in_the_inventory() -> None:
    from api_data.metrics import ApiMetrics
    from inference_api.metrics import ServiceMetrics

    class NoModel:  # what ServiceMetrics reads of a ModelHolder
        current = None

        def staleness_seconds(self) -> None:
            return None

    exported = (
        test_rules.exported_names(ServiceMetrics(NoModel()).registry)
        | test_rules.exported_names(ApiMetrics().registry)
        | test_rules.statsd_mapped_names()
        | test_rules.KUBE_STATE_METRICS
        | test_rules.MLFLOW_SERVER_METRICS
    )
    read = {name for board in BOARDS for expr in board.exprs for name in read_metrics(expr)}
    assert len(read) >= 15  # the prefixes still catch the metrics (not an empty comparison)
    assert read - exported == set()
    text = test_rules.DOC.read_text()
    assert [name for name in sorted(read) if f"`{name}`" not in text] == []


@pytest.mark.parametrize("board", BOARDS, ids=lambda b: b.name)
def test_the_graph_url_is_well_formed_and_round_trips(board: dashboards.Dashboard) -> None:
    url = dashboards.graph_url("http://localhost:9090/", board)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "localhost:9090", "/graph")
    assert " " not in url and "\n" not in url
    params = parse_qsl(parts.query, strict_parsing=True)
    n = len(board.exprs)
    assert [k for k, _ in params] == [
        key for i in range(n) for key in (f"g{i}.expr", f"g{i}.tab", f"g{i}.range_input")
    ]
    values = dict(params)
    assert [values[f"g{i}.expr"] for i in range(n)] == board.exprs
    assert {values[f"g{i}.range_input"] for i in range(n)} == {board.range}
    assert {values[f"g{i}.tab"] for i in range(n)} == {"0"}  # 0: the graph tab, not the table


def test_notes_print_the_same_urls_as_the_module() -> None:
    notes = render_notes()
    for board in BOARDS:
        assert (
            f"  {board.title}: {dashboards.graph_url('http://localhost:9090', board)}\n"
            in notes + "\n"
        )


def test_the_doc_lists_every_dashboard() -> None:
    text = test_rules.DOC.read_text()
    for board in BOARDS:
        assert f"`dashboards/{board.name}.yaml`" in text


# --- against a real Prometheus -------------------------------------------------------------

STEP = 60
SPAN = 50 * 60  # backfilled minutes before now


def openmetrics(end: int) -> str:
    """50 minutes of inference series as the service exports them (counters, a histogram,
    gauges), in OpenMetrics with timestamps: each family's samples together, in time order."""
    families: dict[tuple[str, str], list[str]] = {
        ("forest_inference_requests", "counter"): [],
        ("forest_inference_request_duration_seconds", "histogram"): [],
        ("forest_inference_model_version", "gauge"): [],
        ("forest_inference_model_test_accuracy", "gauge"): [],
        ("forest_inference_predictions", "counter"): [],
    }
    requests, duration, version, accuracy, predictions = families.values()
    req = 'endpoint="/predict",method="POST",instance="a"'
    # Answered requests carry the version that answered; refused ones (503: no model) none.
    dur = req + ',model_version="3",status="200"'
    buckets = [("0.005", 0.6), ("0.01", 0.9), ("0.015", 0.99), ("0.025", 1.0), ("+Inf", 1.0)]
    for i, ts in enumerate(range(end - SPAN, end + 1, STEP)):
        ok, failed = 600 * i, 6 * i  # 10 requests/s, 1 % of them 503
        requests += [
            f'forest_inference_requests_total{{{req},model_version="3",status="200"}} {ok} {ts}',
            f'forest_inference_requests_total{{{req},model_version="",status="503"}} {failed} {ts}',
        ]
        name = "forest_inference_request_duration_seconds"
        duration += [f'{name}_bucket{{{dur},le="{le}"}} {int(ok * f)} {ts}' for le, f in buckets]
        duration += [f"{name}_count{{{dur}}} {ok} {ts}", f"{name}_sum{{{dur}}} {ok * 0.006} {ts}"]
        version.append(f'forest_inference_model_version{{instance="a"}} {2 if i < 25 else 3} {ts}')
        accuracy.append(f'forest_inference_model_test_accuracy{{instance="a"}} 0.91 {ts}')
        predictions += [
            f'forest_inference_predictions_total{{cover_type="{c}",instance="a"}} {n * i} {ts}'
            for c, n in (("1", 400), ("2", 200))
        ]
    lines = []
    for (family, kind), samples in families.items():
        lines += [f"# TYPE {family} {kind}", *samples]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    end = int(time.time()) // STEP * STEP
    with backfilled(tmp_path_factory.mktemp("prometheus"), openmetrics(end)) as url:
        yield url


def test_check_queries_tells_panels_with_data_from_empty_ones(prometheus: str) -> None:
    boards = [b for b in BOARDS if b.name in ("inference", "model")]
    checks = dashboards.check_queries(prometheus, boards)
    assert len(checks) == sum(len(b.exprs) for b in boards)
    assert all(c.error is None for c in checks), [c for c in checks if c.error]
    empty = {c.expr for c in checks if c.empty}
    # Every inference series was backfilled; the batch scores (StatsD) and MLflow's sidecar
    # were not.
    assert empty == {e for e in boards[1].exprs if "forest_champion_" in e or "mlflow_" in e}
    versions = next(c for c in checks if c.expr == "max(forest_inference_model_version)")
    assert versions.series == 1


def test_check_queries_reports_prometheus_errors(prometheus: str) -> None:
    board = dashboards.Dashboard("bad", "Bad", "1h", (dashboards.Panel("p", "u", ("rate(x)",)),))
    (check,) = dashboards.check_queries(prometheus, [board])
    assert check.empty and check.error and "range vector" in check.error


def test_the_screenshot_script_saves_a_png_that_is_not_blank(
    prometheus: str, tmp_path: Path
) -> None:
    missing.file(CHROMIUM, hint="apt-get install -y chromium (.ci/run installs it)")
    from PIL import Image

    out = tmp_path / "inference.png"
    proc = subprocess.run(
        [
            str(VENV_BIN / "python"),
            str(REPO_ROOT / "scripts" / "dashboard_screenshot.py"),
            f"--prometheus={prometheus}",
            "--dashboard=inference",
            f"--out={out}",
        ],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.width >= 1400 and image.height >= 900  # full page: wider when it overflows
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
    # A blank page is one or two colours; drawn charts, legends and text give hundreds.
    assert len(colors) > 200, len(colors)
