"""The four Dockerfiles: lint, pinning, layer order, users, and the locked versions they install.

No Docker daemon runs here, so the images are not built in the suite; what the build would do is
checked from the Dockerfiles themselves: hadolint, the `uv export` command each one runs (run
here on the same uv.lock, its pins compared with the lock and with this venv, which the tests
use), and agreement with the chart that runs the images (user, port, health path, dataset).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.helm import REPO_ROOT, find, pod_containers, render_chart, tool

IMAGES = ["airflow", "mlflow", "api-data", "inference"]
SERVICE_IMAGES = ["mlflow", "api-data", "inference"]
# The Deployment and container of the chart that runs each image.
CHART_WORKLOAD = {
    "airflow": ("forest-mlops-airflow-scheduler", "scheduler"),
    "mlflow": ("forest-mlops-mlflow", "mlflow"),
    "api-data": ("forest-mlops-api-data", "api-data"),
    "inference": ("forest-mlops-inference", "inference"),
}


def dockerfile(image: str) -> str:
    return (REPO_ROOT / "images" / image / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n\s*",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(stage name or base image, its instructions)] in order."""
    result: list[tuple[str, list[tuple[str, str]]]] = []
    for word, rest in instructions(text):
        if word == "FROM":
            parts = rest.split()
            result.append((parts[2] if len(parts) > 2 else parts[0], []))
        elif result:
            result[-1][1].append((word, rest))
    return result


def arg_defaults(text: str) -> dict[str, str]:
    return dict(
        rest.split("=", 1) for word, rest in instructions(text) if word == "ARG" and "=" in rest
    )


@cache
def lock_versions() -> dict[str, set[str]]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    return versions


def uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to export the lock (`make setup` installs it)")
    return found


def exported_requirements(image: str) -> tuple[Requirement, ...]:
    """Run the Dockerfile's own `uv export` command on this checkout's lock."""
    (command,) = re.findall(r"uv export [^\n&;]*", dockerfile(image).replace("\\\n", " "))
    return _export(command.strip())


@cache
def _export(command: str) -> tuple[Requirement, ...]:
    argv = command.split()
    assert "--frozen" in argv, "the image must install the lock as it is"
    output = argv.index("--output-file")
    argv = [uv(), *argv[1:output], *argv[output + 2 :]]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = re.sub(r"\\\n\s*", " ", proc.stdout).splitlines()
    return tuple(
        Requirement(line.split(" --hash")[0].strip())
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    )


@pytest.fixture(scope="module")
def chart_docs() -> list[dict[str, Any]]:
    return render_chart(release="forest-mlops", namespace="forest-mlops")


def chart_container(
    docs: list[dict[str, Any]], image: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    name, container = CHART_WORKLOAD[image]
    workload = find(docs, "Deployment", name)
    (found,) = [c for c in pod_containers(workload) if c["name"] == container]
    return workload["spec"]["template"]["spec"], found


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_finds_no_error_or_warning(image: str) -> None:
    path = REPO_ROOT / "images" / image / "Dockerfile"
    proc = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "warning", "--no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_base_images_are_pinned_to_a_version_tag(image: str) -> None:
    text = dockerfile(image)
    args = arg_defaults(text)
    names = {name for name, _ in stages(text)}
    for word, rest in instructions(text):
        if word != "FROM":
            continue
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
        if base in names:  # an earlier stage
            continue
        repository, _, tag = base.rpartition(":")
        assert repository and tag and tag != "latest", f"{image}: unpinned base {base}"
        assert re.search(r"\d+\.\d+", tag), f"{image}: {base} is not pinned to a version"


@pytest.mark.parametrize("image", IMAGES)
def test_dependencies_are_installed_before_the_code_is_copied(image: str) -> None:
    text = dockerfile(image)
    all_stages = stages(text)
    code_copies = [
        name
        for name, body in all_stages
        for word, rest in body
        if word == "COPY" and re.search(r"(^|\s)(src/|\.\s|api-data/|inference/)", rest)
    ]
    assert code_copies and set(code_copies) == {"wheel"}, "code must be copied only into `wheel`"
    runs = [rest for word, rest in instructions(text) if word == "RUN"]
    locked = next(i for i, r in enumerate(runs) if "--require-hashes -r" in r)
    project = next(i for i, r in enumerate(runs) if "from=wheel" in r)
    assert locked < project
    assert "--no-deps" in runs[locked] and "--no-deps" in runs[project]


@pytest.mark.parametrize("image", IMAGES)
def test_the_image_runs_as_the_non_root_user_the_chart_expects(
    image: str, chart_docs: list[dict[str, Any]]
) -> None:
    final_stage = stages(dockerfile(image))[-1][1]
    users = [rest for word, rest in final_stage if word == "USER"]
    assert users, f"{image}: the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (kubelet checks runAsNonRoot)"
    pod_spec, _ = chart_container(chart_docs, image)
    context = pod_spec["securityContext"]
    assert (int(uid), int(gid)) == (context["runAsUser"], context["runAsGroup"])


@pytest.mark.parametrize("image", SERVICE_IMAGES)
def test_healthcheck_and_port_match_the_chart_probe(
    image: str, chart_docs: list[dict[str, Any]]
) -> None:
    text = dockerfile(image)
    _, container = chart_container(chart_docs, image)
    (healthcheck,) = [rest for word, rest in instructions(text) if word == "HEALTHCHECK"]
    exposed = [int(rest) for word, rest in instructions(text) if word == "EXPOSE"]
    assert exposed == [p["containerPort"] for p in container["ports"]]
    assert f":{exposed[0]}" in healthcheck or f"'{exposed[0]}'" in healthcheck
    assert container["livenessProbe"]["httpGet"]["path"] + "'" in healthcheck


def test_api_data_bakes_the_dataset_where_the_chart_reads_it(
    chart_docs: list[dict[str, Any]],
) -> None:
    text = dockerfile("api-data")
    _, container = chart_container(chart_docs, "api-data")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    chart_path = Path(env["API_DATA_DATASET"])
    (copy,) = [rest for word, rest in instructions(text) if word == "COPY" and "dataset" in rest]
    source, target = copy.split()[-2:]
    assert target.rstrip("/") == str(chart_path.parent)
    # Made at build time by the project's CLI, never copied from the build context; both
    # commands write the file the chart reads (plus, when synthetic, its marker beside it).
    for command in ("forest-mlops data download", "forest-mlops data synthetic"):
        assert f"{command} --output {source.rstrip('/')}/{chart_path.name}" in text
    assert arg_defaults(text)["DATASET_SOURCE"] == "download"


def test_airflow_image_keeps_the_base_image_airflow_version() -> None:
    text = dockerfile("airflow")
    version = arg_defaults(text)["AIRFLOW_VERSION"]
    assert lock_versions()["apache-airflow"] == {version}
    pins = {canonicalize_name(r.name): r.specifier for r in exported_requirements("airflow")}
    assert str(pins["apache-airflow"]) == f"=={version}"
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python" in text
    # The build fails when the install replaced the base image's Airflow.
    assert "m.version('apache-airflow')" in text


@pytest.mark.parametrize("image", IMAGES)
def test_image_pins_are_the_lock_and_the_test_venv_versions(image: str) -> None:
    requirements = exported_requirements(image)
    assert len(requirements) > 50
    locked = lock_versions()
    mismatched_venv = []
    for requirement in requirements:
        (spec,) = requirement.specifier
        name = canonicalize_name(requirement.name)
        assert spec.operator == "==" and spec.version in locked[name], requirement
        marker: Marker | None = requirement.marker
        if marker is None or marker.evaluate():
            installed = metadata.version(name)
            if installed != spec.version:
                mismatched_venv.append(f"{name}: image {spec.version}, venv {installed}")
    assert not mismatched_venv, "the tests run other versions than the image installs"
    names = {canonicalize_name(r.name) for r in requirements}
    for direct in ("mlflow", "scikit-learn", "fastapi", "pymysql", "cryptography", "boto3"):
        assert direct in names
    assert ("apache-airflow" in names) == (image == "airflow")


def test_dockerignore_lets_in_only_what_the_dockerfiles_copy() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allowlist: everything is excluded first"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for image in IMAGES:
        for word, rest in instructions(dockerfile(image)):
            if word == "COPY" and "--from=" not in rest:
                *sources, _ = [part for part in rest.split() if not part.startswith("--")]
                for source in sources:
                    assert source.rstrip("/") in allowed, f"{image} copies {source}"
    assert not allowed & {".venv", ".git", ".tools", "tests", "bench"}


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", re.I)
WELL_KNOWN = ("minioadmin", "airflow:airflow", "admin:admin", "changeme")


@pytest.mark.parametrize("image", IMAGES)
def test_no_secret_is_baked_into_an_image(image: str) -> None:
    text = dockerfile(image)
    for word, rest in instructions(text):
        if word in {"ENV", "ARG"}:
            names = re.findall(r"(\w+)=", rest) or [rest.split()[0]]
            assert not [n for n in names if SECRET_NAME.search(n)], f"{image}: {word} {rest}"
    assert not [w for w in WELL_KNOWN if w in text.lower()]
    assert "--mount=type=secret" not in text  # nothing secret is needed to build
