"""Each image holds its own dependency set and nothing else (pyproject.toml: the core plus the
image's extra), and the chart's command for it runs from it.

Per service image: its pod started as the chart renders it (command, env, user, read-only root)
answers /health; then, in the same container spec, the installed distributions are exactly the
locked set of its extra (plus the project), at the locked versions, and importing another
image's code fails with the missing package. A command that needed a package outside the set
would fail its pod here. The Airflow image: its base's Airflow plus the `train` set at the
locked versions, and the project's training steps import.
"""

from __future__ import annotations

import json
import re
import urllib.request

from tests.images.conftest import PROJECT_IMAGES
from tests.images.pods import Pod, docker, run_once
from tests.platform.test_dependency_sets import canonical
from tests.platform.test_images import exported_requirements, lock_versions

# Run in the image: every installed distribution and its version, as JSON.
INSTALLED = (
    "import json, importlib.metadata as m\n"
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))\n"
)


def refused(module: str) -> str:
    """Run in the image: import `module`, print the missing package's name it fails on."""
    return (
        "try:\n"
        f"    import {module}\n"
        "except ModuleNotFoundError as exc:\n"
        "    print('MISSING', exc.name)\n"
        "else:\n"
        "    print('IMPORTED')\n"
    )


def installed_in(pod: Pod) -> dict[str, str]:
    out = run_once(pod, ["python", "-c", INSTALLED])
    return {canonical(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}


def locked_here(image: str) -> dict[str, str]:
    """The image's exported set (its build's `uv export`) whose markers hold on Linux with
    Python 3.11, as the image's pip evaluates them: name -> locked version."""
    pins = {}
    for requirement in exported_requirements(image):
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            pins[canonical(requirement.name)] = spec.version
    return pins


def assert_exactly_the_locked_set(image: str, installed: dict[str, str]) -> None:
    expected = {**locked_here(image), "forest-mlops": installed.get("forest-mlops", "?")}
    assert set(installed) == set(expected), (
        f"{image}: outside its set {sorted(set(installed) - set(expected))}, "
        f"missing {sorted(set(expected) - set(installed))}"
    )
    wrong = {n: (v, expected[n]) for n, v in installed.items() if v != expected[n]}
    assert not wrong, f"{image}: installed vs locked versions differ: {wrong}"


def health(pod: Pod, port: int) -> int:
    with urllib.request.urlopen(f"http://{pod.ip}:{port}/health", timeout=10) as response:
        return int(response.status)


# Another image's code, and the package it must fail on here.
FOREIGN = {
    "api-data": [
        ("forest_mlops.training.features", "sklearn"),
        ("mlflow.server", "mlflow"),
        ("inference_api.app", "inference_api"),
    ],
    "inference": [
        ("forest_mlops.training.features", "sklearn"),
        ("mlflow.server", "flask"),
        ("api_data.app", "api_data"),
    ],
    "mlflow": [("inference_api.app", "inference_api"), ("kubernetes", "kubernetes")],
}


def check_service(image: str, pod: Pod, port: int) -> None:
    assert health(pod, port) == 200, pod.logs()
    installed = installed_in(pod)
    assert_exactly_the_locked_set(image, installed)
    # Every image starts the CLI (its parser imports every subcommand module).
    assert "usage: forest-mlops" in run_once(pod, ["forest-mlops", "--help"])
    for module, package in FOREIGN[image]:
        out = run_once(pod, ["python", "-c", refused(module)])
        assert out.split() == ["MISSING", package], f"{image}: import {module}: {out}"


def test_api_data_runs_with_only_its_set(api_data: Pod) -> None:
    check_service("api-data", api_data, 8000)


def test_inference_runs_with_only_its_set(inference: Pod) -> None:
    inference.wait_ready(timeout=180, kind="livenessProbe")
    check_service("inference", inference, 8001)
    installed = installed_in(inference)
    assert {"onnxruntime", "mlflow-skinny"} <= set(installed)


def test_mlflow_runs_with_only_its_set(mlflow: Pod) -> None:
    check_service("mlflow", mlflow, 5000)


def run_in_image(image: str, script: str) -> str:
    proc = docker("run", "--rm", "--entrypoint", "python", image, "-c", script, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_airflow_image_is_its_base_plus_the_train_set(engine: str) -> None:
    image = PROJECT_IMAGES["airflow"]
    out = run_in_image(image, INSTALLED)
    installed = {canonical(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}
    # The base image's Airflow, untouched; every package of the train set at its locked version.
    assert installed["apache-airflow"] in lock_versions()["apache-airflow"]
    wrong = {
        name: (installed.get(name), version)
        for name, version in locked_here("airflow").items()
        if installed.get(name) != version
    }
    assert not wrong, f"installed vs locked: {wrong}"
    assert "mlflow" not in installed, "the full mlflow (server stack) belongs to the mlflow image"
    out = run_in_image(
        image,
        "import forest_mlops.training.workflow, forest_mlops.retrain, forest_mlops.serving.pyfunc\n"
        "import forest_mlops.ingestion.pipeline\n"
        "from forest_mlops.training import tracking\n"
        "print(tracking.pip_requirements(('mlflow', 'scikit-learn')))\n",
    )
    assert re.search(r"'mlflow-skinny==[\d.]+', 'scikit-learn==[\d.]+'", out), out
