"""The load test's image (images/load/Dockerfile) runs `make load`'s Job as rendered
(forest_mlops.load.job.load_job: user, read-only root, dropped capabilities, /tmp emptyDir,
args) against a server answering under the inference Service's name on the pods' network: the
inference image serving tests/load/predict_stub.py, which checks each record with inference's
own parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forest_mlops.load import job, summary
from tests.images.conftest import PROJECT_IMAGES, need_images
from tests.images.pods import Pod, docker
from tests.support.helm import REPO_ROOT

LOAD_IMAGE = PROJECT_IMAGES["inference"].replace("/inference:", "/load:")
RELEASE = "forest-mlops"


@pytest.fixture(scope="module")
def inference_name(network: str) -> Iterator[str]:
    """The stub on the network as `<release>-inference:8001`, what the Job's --host names."""
    need_images(PROJECT_IMAGES["inference"])
    name = f"{network}-predict-stub"
    stub = REPO_ROOT / "tests" / "load" / "predict_stub.py"
    docker(
        "run", "--detach", "--name", name, "--network", network,
        "--network-alias", f"{RELEASE}-inference", "--label", "forest-mlops-test=1",
        "--read-only", "--volume", f"{stub}:/stub/predict_stub.py:ro",
        "--entrypoint", "uvicorn", PROJECT_IMAGES["inference"],
        "predict_stub:app", "--app-dir", "/stub", "--host", "0.0.0.0", "--port", "8001",
    )  # fmt: skip
    yield name
    docker("rm", "--force", name, check=False)


def test_the_image_has_the_locked_locust(engine: str) -> None:
    need_images(LOAD_IMAGE)
    proc = docker("run", "--rm", LOAD_IMAGE, "--version")
    assert proc.stdout.startswith("locust 2.47.0 "), proc.stdout


@pytest.mark.slow
def test_the_job_runs_as_rendered_and_reports(
    inference_name: str, network: str, tmp_path: Path
) -> None:
    need_images(LOAD_IMAGE)
    body = job.load_job(
        name="forest-mlops-load-test", namespace=RELEASE, release=RELEASE, image=LOAD_IMAGE,
        rate=5, duration_s=10,
    )  # fmt: skip
    pod = Pod([], body, network, "load", tmp_path / "load")
    args = pod.run_args(pod.container(), detach=False)
    assert "--read-only" in args and "--user" in args and "ALL" in args
    proc = docker(*args, check=False, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = summary.result(summary.parse_log(proc.stdout + proc.stderr))
    assert result["failures"] == 0, result["errors"]
    assert result["requests"] >= 25
    assert result["achieved_rate_per_s"] == pytest.approx(5, rel=0.25)
