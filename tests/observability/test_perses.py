"""Perses (issue 22) as the chart runs it: the REAL server built by scripts/build-perses.sh (from
the machine's cache; CI builds it in .ci/run) with the chart's rendered config and provisioning
files, its plugins unpacked from the same archives the stand-in image carries and their CUE
dependency read from the cache, in front of a real local Prometheus with backfilled samples
(test_dashboards' fixture). Asserts: both plugins loaded, every dashboard of
files/prometheus/dashboards with all its panels (forest_mlops.monitoring.perses.check_perses),
the datasource proxy answering, the panels with data the same as asked of Prometheus directly,
and a screenshot of a dashboard that is not blank.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from forest_mlops.monitoring import dashboards, perses
from tests.conftest import CHROMIUM
from tests.observability.test_dashboards import prometheus  # noqa: F401  (the fixture)
from tests.support import missing
from tests.support.helm import REPO_ROOT, find, render_chart
from tests.support.processes import VENV_BIN, ServerProcess, free_port

VERSION = "v0.52.0"
CACHE = Path(os.environ.get("FOREST_CACHE", "/var/cache/forest-mlops")) / f"perses-{VERSION}"
HINT = "bash scripts/build-perses.sh builds it (about 10 minutes); .ci/run does"
PROJECT = "fm"  # the test render's release name: the default project


@pytest.fixture(scope="module")
def perses_url(prometheus: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    binary = missing.file(CACHE / "perses", hint=HINT)
    docs = render_chart({"airflow": {"enabled": False}})
    config = yaml.safe_load(find(docs, "ConfigMap", "fm-perses")["data"]["config.yaml"])
    files = find(docs, "ConfigMap", "fm-perses-provisioning")["data"]
    root = tmp_path_factory.mktemp("perses")
    # The chart's paths, moved to this machine: the folders the pod mounts become temp folders,
    # the image's plugin archives are the cache's (the same files the stand-in copies).
    assert config["plugin"]["archive_path"] == "/etc/perses/plugins-archive"
    config["database"]["file"]["folder"] = str(root / "data")
    config["plugin"] = {
        "path": str(root / "plugins"),
        "archive_path": str(CACHE / "plugins-archive"),
    }
    config["provisioning"]["folders"] = [str(root / "provisioning")]
    (root / "provisioning").mkdir()
    for name, text in files.items():
        if name.startswith("datasource-"):
            # The one value that names the cluster: the Prometheus Service, here the local one.
            assert "http://fm-prometheus:9090" in text
            text = text.replace("http://fm-prometheus:9090", prometheus)
        (root / "provisioning" / name).write_text(text)
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = ServerProcess(
        [str(binary), f"--config={root / 'config.yaml'}", f"--web.listen-address=127.0.0.1:{port}"],
        log_path=root / "perses.log",
        # As the stand-in image sets them: the CUE module the plugins' schemas import is in the
        # cache; a registry that cannot answer, so nothing is fetched.
        env={"CUE_CACHE_DIR": str(CACHE / "cue-cache"), "CUE_REGISTRY": "localhost:1+insecure"},
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/api/v1/health", timeout=120)
        # Provisioning runs in the background once the server is up.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = httpx.get(f"{url}/api/v1/projects/{PROJECT}/dashboards", timeout=10)
            if listed.status_code == 200 and len(listed.json()) >= len(
                dashboards.load_dashboards()
            ):
                break
            time.sleep(1)
        yield url
    finally:
        process.stop()
        log = (root / "perses.log").read_text(errors="replace")
        print(log[-3000:])


def test_both_plugins_load(perses_url: str) -> None:
    modules = httpx.get(f"{perses_url}/api/v1/plugins", timeout=10).json()
    assert perses.loaded_plugins(modules) >= perses.REQUIRED_PLUGINS, modules


def test_the_proxy_answers_a_query(perses_url: str) -> None:
    response = httpx.get(
        f"{perses.proxy_url(perses_url, PROJECT)}/api/v1/query", params={"query": "up"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"


def test_every_dashboard_with_every_panel_and_the_same_data_as_prometheus(
    perses_url: str,
    prometheus: str,  # noqa: F811
) -> None:
    end = time.time()
    problems = perses.check_perses(perses_url, PROJECT, end=end)
    # Only the backfilled inference series exist: every other panel is empty, and exactly the
    # ones Prometheus itself answers with nothing.
    assert [p for p in problems if not p.startswith("no data: ")] == []
    empty_direct = {
        f"{c.dashboard} / {c.panel}: {c.expr}"
        for c in dashboards.check_queries(prometheus, end=end)
        if c.empty
    }
    empty_perses = {p.removeprefix("no data: ").rsplit(" (", 1)[0] for p in problems}
    assert empty_perses == empty_direct
    assert not [p for p in problems if p.startswith("no data: inference /")]


def test_check_perses_reports_a_missing_dashboard(perses_url: str) -> None:
    extra = dashboards.Dashboard("nosuch", "No such", "1h", (dashboards.Panel("p", "u", ("up",)),))
    problems = perses.check_perses(perses_url, PROJECT, dashboards=[extra])
    assert "dashboard missing: nosuch" in problems
    assert any(p.startswith("dashboard not in the files: ") for p in problems)


def test_the_screenshot_of_a_perses_dashboard_is_not_blank(perses_url: str, tmp_path: Path) -> None:
    missing.file(CHROMIUM, hint="apt-get install -y chromium (.ci/run installs it)")
    from PIL import Image

    out = tmp_path / "inference.png"
    proc = subprocess.run(
        [
            str(VENV_BIN / "python"),
            str(REPO_ROOT / "scripts" / "dashboard_screenshot.py"),
            f"--perses={perses_url}",
            f"--project={PROJECT}",
            "--dashboard=inference",
            f"--out={out}",
        ],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Image.open(out) as image:
        assert image.format == "PNG"
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
    # A blank page is a few colours; drawn charts, legends and text give hundreds.
    assert len(colors) > 200, len(colors)
