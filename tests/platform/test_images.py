"""The project images: lint, pinning, layer order, users, and the locked versions they install.

One Dockerfile per image: images/<image>/Dockerfile (airflow, mlflow, api-data, inference); the
three service Dockerfiles open with the same stages, so their images share those layers. No
Docker daemon runs here, so the images are not built in the suite; what the build would do is
checked from the Dockerfiles themselves, per image (the stages BuildKit builds for it and the
config it inherits, tests/platform/dockerfiles.py): hadolint, the `uv export` command each image
runs (run here on the same uv.lock, its pins compared with the lock and with this venv, which
the tests use), and agreement with the chart that runs the images (user, port, health path,
dataset).
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

from tests.platform.dockerfiles import (
    DOCKERFILES,
    IMAGES,
    SERVICE_IMAGES,
    SHARED_STAGES,
    arg_defaults,
    image_config,
    instructions,
    lineage,
    needed_stages,
    read,
    stage_names,
    stages,
    target_stage,
)
from tests.support.helm import REPO_ROOT, find, pod_containers, render_chart
from tests.support.scans import hadolint

# The Deployment and container of the chart that runs each image.
CHART_WORKLOAD = {
    "airflow": ("forest-mlops-airflow-scheduler", "scheduler"),
    "mlflow": ("forest-mlops-mlflow", "mlflow"),
    "api-data": ("forest-mlops-api-data", "api-data"),
    "inference": ("forest-mlops-inference", "inference"),
}
CODE_COPY = re.compile(r"(^|\s)(src/|\.\s|api-data/|inference/)")


def dockerfile(image: str) -> str:
    return read(IMAGES[image][0])


def target(image: str) -> str | None:
    return IMAGES[image][1]


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


# The extra of pyproject.toml each image installs (with the core dependencies).
IMAGE_EXTRA = {
    "airflow": "train",
    "mlflow": "mlflow-server",
    "api-data": "api-data",
    "inference": "inference",
}


def exported_requirements(image: str) -> tuple[Requirement, ...]:
    """Run the `uv export` command of the image's extra, as its build runs it, on this
    checkout's lock."""
    (command,) = [
        found
        for stage in needed_stages(dockerfile(image), target(image))
        for word, rest in stage.body
        if word == "RUN"
        for found in re.findall(r"uv export [^\n&;]*", rest)
        if f"--extra {IMAGE_EXTRA[image]} " in found
    ]
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


@pytest.mark.parametrize("path", DOCKERFILES)
def test_hadolint_finds_no_error_or_warning(path: str, tmp_path: Path) -> None:
    findings = hadolint([REPO_ROOT / path], tmp_path)
    assert [f for f in findings if f["level"] in ("error", "warning")] == []


@pytest.mark.parametrize("path", DOCKERFILES)
def test_base_images_are_pinned_to_a_version_tag(path: str) -> None:
    text = read(path)
    args = arg_defaults(instructions(text))
    names = set(stage_names(text))
    for stage in stages(text):
        base = stage.base
        for _ in range(3):  # an ARG's default may name other ARGs
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        if base in names or base == "scratch":  # an earlier stage, or the empty image
            continue
        repository, _, tag = base.rpartition(":")
        assert repository and tag and tag != "latest", f"{path}: unpinned base {base}"
        assert re.search(r"\d+\.\d+", tag), f"{path}: {base} is not pinned to a version"


@pytest.mark.parametrize("path", DOCKERFILES)
def test_every_stage_a_build_reads_from_is_defined_before_it(path: str) -> None:
    """A `from=` that names no stage would silently be pulled as an image of that name."""
    defined: list[str] = []
    for stage in stages(read(path)):
        for name in stage.references():
            assert name in defined, f"{path}: stage {stage.name} reads from undefined {name}"
        if stage.name:
            assert stage.name not in defined, f"{path}: stage {stage.name} defined twice"
            defined.append(stage.name)


def test_the_service_dockerfiles_open_with_the_same_shared_stages() -> None:
    """BuildKit keys its cache by instruction and content, not by Dockerfile: identical first
    stages give the three images the same base layers (built, pushed and pulled once). A stage
    edited in one Dockerfile only would silently give that image a base of its own."""
    opening = {
        image: [(s.base, s.name, s.body) for s in stages(dockerfile(image))][: len(SHARED_STAGES)]
        for image in SERVICE_IMAGES
    }
    assert [name for _, name, _ in opening["mlflow"]] == SHARED_STAGES
    assert opening["api-data"] == opening["mlflow"] == opening["inference"]
    # The global ARGs before the first FROM choose the base image: the same default in all.
    bases = {arg_defaults(instructions(dockerfile(i)))["PYTHON_IMAGE"] for i in SERVICE_IMAGES}
    assert len(bases) == 1, bases
    # Then each service: its own set on `base` (`<image>-deps`), then its own stage.
    for image in SERVICE_IMAGES:
        chain = [stage.name for stage in lineage(dockerfile(image), image)]
        assert chain == ["base", f"{image}-deps", image], image
        assert stages(dockerfile(image))[-1].name == image, "the image is the last stage"


@pytest.mark.parametrize("image", SERVICE_IMAGES)
def test_the_base_installs_the_shared_entries_and_each_service_only_the_rest(image: str) -> None:
    """What each stage installs: `base` the entries all three services' sets hold
    (images/requirements.py split of their exports), `<image>-deps` the rest of its own."""
    text = dockerfile(image)
    (split,) = [
        rest
        for stage in stages(text)
        for word, rest in stage.body
        if word == "RUN" and "requirements.py split" in rest
    ]
    exported = {i: f"/export/{IMAGE_EXTRA[i]}.txt" for i in SERVICE_IMAGES}
    for service, path in exported.items():
        assert f"--extra {IMAGE_EXTRA[service]} --output-file {path}" in split
    assert re.search(r"requirements\.py split /req " + " ".join(exported.values()), split)

    def installs(stage_name: str) -> list[str]:
        (stage,) = [s for s in stages(text) if s.name == stage_name]
        return [
            m for word, rest in stage.body if word == "RUN"
            for m in re.findall(r"--require-hashes -r (\S+)", rest)
        ]  # fmt: skip

    assert installs("base") == ["/tmp/req/shared.txt"]
    assert installs(f"{image}-deps") == [f"/tmp/req/{IMAGE_EXTRA[image]}.txt"]
    own = target_stage(text, image).body
    assert not [r for w, r in own if w == "RUN" and "--require-hashes" in r], image


# The stage that builds the project wheel (the shared package, plus the service's own).
WHEEL_STAGES = {"wheel"}
# Each service's own sources, and the one image they belong in.
SERVICE_SOURCES = {"api-data/api_data/": "api-data", "inference/inference_api/": "inference"}


@pytest.mark.parametrize("image", IMAGES)
def test_a_services_code_is_a_build_input_of_its_own_image_only(image: str) -> None:
    """skaffold rebuilds every image whose Dockerfile copies an edited file, from any stage,
    whatever the target (skaffold issue 1120): with the services as targets of one Dockerfile,
    an inference edit rebuilt and rolled all three (bench/dev_loop: 49 s per edit). So only a
    service's own Dockerfile may COPY its sources, in any of its stages.
    tests/platform/test_skaffold_binary.py asks skaffold itself for the same property."""
    copied = {
        rest.split()[0]
        for word, rest in instructions(dockerfile(image))
        if word == "COPY" and not rest.startswith("--from")
    }
    for source, owner in SERVICE_SOURCES.items():
        assert (source in copied) == (image == owner), f"{image} copies {sorted(copied)}"


@pytest.mark.parametrize("image", IMAGES)
def test_dependencies_are_installed_before_the_code_is_copied(image: str) -> None:
    text = dockerfile(image)
    code_copies = [
        stage.name
        for stage in needed_stages(text, target(image))
        for word, rest in stage.body
        if word == "COPY" and CODE_COPY.search(rest)
    ]
    assert code_copies and set(code_copies) <= WHEEL_STAGES, "code must be copied only into wheels"
    runs = [
        rest for stage in lineage(text, target(image)) for word, rest in stage.body if word == "RUN"
    ]
    locked = next(i for i, r in enumerate(runs) if "--require-hashes -r" in r)
    project = next(i for i, r in enumerate(runs) if "from=wheel" in r)
    assert locked < project
    assert "--no-deps" in runs[locked] and "--no-deps" in runs[project]


@pytest.mark.parametrize("image", IMAGES)
def test_the_image_runs_as_the_non_root_user_the_chart_expects(
    image: str, chart_docs: list[dict[str, Any]]
) -> None:
    own = target_stage(dockerfile(image), target(image)).body
    assert [rest for word, rest in own if word == "USER"], f"{image}: its stage sets no USER"
    user = image_config(dockerfile(image), target(image)).user
    assert user is not None
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (kubelet checks runAsNonRoot)"
    pod_spec, _ = chart_container(chart_docs, image)
    context = pod_spec["securityContext"]
    assert (int(uid), int(gid)) == (context["runAsUser"], context["runAsGroup"])


@pytest.mark.parametrize("image", SERVICE_IMAGES)
def test_healthcheck_and_port_match_the_chart_probe(
    image: str, chart_docs: list[dict[str, Any]]
) -> None:
    # Each target states its own port, probe and command: none is left to the shared stages.
    own = {word for word, _ in target_stage(dockerfile(image), image).body}
    assert {"EXPOSE", "HEALTHCHECK", "CMD", "USER"} <= own, image
    config = image_config(dockerfile(image), image)
    _, container = chart_container(chart_docs, image)
    healthcheck = config.healthcheck
    assert healthcheck is not None
    assert config.exposed == [p["containerPort"] for p in container["ports"]]
    port = config.exposed[0]
    assert f":{port}" in healthcheck or f"'{port}'" in healthcheck
    assert container["livenessProbe"]["httpGet"]["path"] + "'" in healthcheck


SERVICE_COMMANDS = {
    "mlflow": '["mlflow", "server", ',
    "api-data": '["forest-mlops", "api-data"]',
    "inference": '["forest-mlops", "inference"]',
}


@pytest.mark.parametrize("image", SERVICE_IMAGES)
def test_each_service_runs_its_own_command(image: str) -> None:
    cmd = image_config(dockerfile(image), image).cmd
    assert cmd is not None and cmd.startswith(SERVICE_COMMANDS[image]), cmd


def test_api_data_bakes_the_dataset_where_the_chart_reads_it(
    chart_docs: list[dict[str, Any]],
) -> None:
    text = dockerfile("api-data")
    _, container = chart_container(chart_docs, "api-data")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    chart_path = Path(env["API_DATA_DATASET"])
    own = target_stage(text, "api-data").body
    (copy,) = [rest for word, rest in own if word == "COPY" and "dataset" in rest]
    source, target_dir = copy.split()[-2:]
    assert target_dir.rstrip("/") == str(chart_path.parent)
    # Made at build time by the project's CLI, never copied from the build context; both
    # commands write the file the chart reads (plus, when synthetic, its marker beside it:
    # the whole folder is copied).
    dataset = target_stage(text, "dataset")
    (run,) = [rest for word, rest in dataset.body if word == "RUN"]
    for command in ("forest-mlops data download", "forest-mlops data synthetic"):
        assert f"{command} --output {source.rstrip('/')}/{chart_path.name}" in run
    assert arg_defaults(dataset.body)["DATASET_SOURCE"] == "download"
    config = image_config(text, "api-data")
    assert config.env["API_DATA_DATASET"] == str(chart_path)
    state_dir = str(Path(config.env["API_DATA_STATE_PATH"]).parent)
    assert state_dir == "/var/lib/api-data"
    assert [
        rest
        for word, rest in own
        if word == "RUN" and f"install --directory --owner=10001 --group=10001 {state_dir}" in rest
    ]


@pytest.mark.parametrize("image", ["mlflow", "inference"])
def test_only_the_api_data_build_makes_the_dataset(image: str) -> None:
    """BuildKit builds only what a target needs: mlflow and inference never download it."""
    assert "dataset" in {s.name for s in needed_stages(dockerfile("api-data"), "api-data")}
    assert "dataset" not in {s.name for s in needed_stages(dockerfile(image), image)}


def test_airflow_image_keeps_the_base_image_airflow_version() -> None:
    text = dockerfile("airflow")
    version = arg_defaults(instructions(text))["AIRFLOW_VERSION"]
    assert lock_versions()["apache-airflow"] == {version}
    # Airflow and its providers come from the base image only: the train set holds none.
    names = {canonicalize_name(r.name) for r in exported_requirements("airflow")}
    assert not {n for n in names if n.startswith("apache-airflow")}
    # Of the train set, only what the base lacks at the locked version is installed.
    assert "requirements.py missing /tmp/req/train.txt >/tmp/missing.txt" in text
    assert "--require-hashes -r /tmp/missing.txt" in text
    # The base is an ARG (scripts/images/standins.sh passes a stand-in where it cannot be
    # pulled) whose default is the official image of that version.
    assert "ARG AIRFLOW_IMAGE=apache/airflow:${AIRFLOW_VERSION}-python" in text
    assert "FROM ${AIRFLOW_IMAGE}\n" in text
    # The build fails when the install replaced the base image's Airflow.
    assert "m.version('apache-airflow')" in text


@pytest.mark.parametrize("image", IMAGES)
def test_image_pins_are_the_lock_and_the_test_venv_versions(image: str) -> None:
    requirements = exported_requirements(image)
    assert len(requirements) > 20
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
    needed, absent = IMAGE_PACKAGES[image]
    assert needed <= names, needed - names
    assert not absent & names, absent & names


# Each image's set: what it must hold, what it must not (another image's packages).
IMAGE_PACKAGES = {
    "airflow": (
        {"scikit-learn", "mlflow-skinny", "onnx", "onnxruntime", "skops", "kubernetes", "pymysql"},
        {"mlflow", "apache-airflow", "flask", "pyarrow", "gunicorn"},
    ),
    "mlflow": (
        {"mlflow", "pymysql", "cryptography", "boto3"},
        {"onnxruntime", "onnx", "kubernetes", "apache-airflow"},
    ),
    "api-data": (
        {"fastapi", "uvicorn", "pandas", "numpy", "orjson", "pymysql", "prometheus-client"},
        {"mlflow", "mlflow-skinny", "scikit-learn", "scipy", "onnxruntime", "boto3", "pyarrow"},
    ),
    "inference": (
        {"fastapi", "onnxruntime", "mlflow-skinny", "pandas", "pymysql", "cryptography"},
        {"mlflow", "scikit-learn", "scipy", "pyarrow", "flask", "boto3", "apache-airflow"},
    ),
}


def test_dockerignore_lets_in_only_what_the_dockerfiles_copy() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allowlist: everything is excluded first"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for path in DOCKERFILES:
        for word, rest in instructions(read(path)):
            if word == "COPY" and "--from=" not in rest:
                *sources, _ = [part for part in rest.split() if not part.startswith("--")]
                for source in sources:
                    assert source.rstrip("/") in allowed, f"{path} copies {source}"
    assert not allowed & {".venv", ".git", ".tools", "tests", "bench"}


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", re.I)
WELL_KNOWN = ("minioadmin", "airflow:airflow", "admin:admin", "changeme")


@pytest.mark.parametrize("path", DOCKERFILES)
def test_no_secret_is_baked_into_an_image(path: str) -> None:
    text = read(path)
    for word, rest in instructions(text):
        if word in {"ENV", "ARG"}:
            names = re.findall(r"(\w+)=", rest) or [rest.split()[0]]
            assert not [n for n in names if SECRET_NAME.search(n)], f"{path}: {word} {rest}"
    assert not [w for w in WELL_KNOWN if w in text.lower()]
    assert "--mount=type=secret" not in text  # nothing secret is needed to build
