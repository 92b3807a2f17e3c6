"""Read the project's Dockerfiles as BuildKit would build one image: its stages, the stages a
target needs, and the image config the target ends up with.

No Docker daemon runs here, so the platform tests check the Dockerfiles themselves; these
helpers follow the multi-stage rules that matter for that: a stage inherits the layers and the
config (USER, EXPOSE, ENV, HEALTHCHECK, CMD) of the stage it is `FROM`; `--mount=...,from=X`
and `COPY --from=X` make X a build dependency without inheriting anything; `--target` builds
only the stages the target needs, and without it the last stage is the image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from tests.support.helm import REPO_ROOT

# Each project image: the Dockerfile (relative to the repository root, the build context) and
# the target skaffold builds (None: the last stage). One Dockerfile per image: skaffold counts
# every COPY of a Dockerfile as an input of each artifact built from it, whatever the target.
IMAGES: dict[str, tuple[str, str | None]] = {
    "airflow": ("images/airflow/Dockerfile", None),
    "mlflow": ("images/mlflow/Dockerfile", None),
    "api-data": ("images/api-data/Dockerfile", None),
    "inference": ("images/inference/Dockerfile", None),
}
SERVICE_IMAGES = ["mlflow", "api-data", "inference"]
# The stages the three service Dockerfiles hold identically (their layers are then shared).
SHARED_STAGES = ["build-tools", "requirements", "base"]
DOCKERFILES = sorted({path for path, _ in IMAGES.values()})

Instruction = tuple[str, str]


@dataclass
class Stage:
    base: str
    name: str | None
    body: list[Instruction] = field(default_factory=list)

    def references(self) -> set[str]:
        """Stages or images this stage reads files from (bind mounts, COPY --from)."""
        found: set[str] = set()
        for word, rest in self.body:
            if word == "RUN":
                found |= set(re.findall(r"--mount=\S*\bfrom=([^,\s]+)", rest))
            if word == "COPY":
                found |= set(re.findall(r"--from=(\S+)", rest))
        return found


@cache
def read(path: str) -> str:
    return (REPO_ROOT / path).read_text()


def instructions(text: str) -> list[Instruction]:
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


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    for word, rest in instructions(text):
        if word == "FROM":
            parts = rest.split()
            alias = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None
            result.append(Stage(base=parts[0], name=alias))
        elif result:
            result[-1].body.append((word, rest))
    return result


def stage_names(text: str) -> list[str]:
    return [stage.name for stage in stages(text) if stage.name]


def target_stage(text: str, target: str | None) -> Stage:
    all_stages = stages(text)
    if target is None:
        return all_stages[-1]
    (found,) = [stage for stage in all_stages if stage.name == target]
    return found


def lineage(text: str, target: str | None) -> list[Stage]:
    """The FROM chain of a target, first stage first: whose layers and config it inherits."""
    by_name = {stage.name: stage for stage in stages(text) if stage.name}
    chain = [target_stage(text, target)]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain[::-1]


def needed_stages(text: str, target: str | None) -> list[Stage]:
    """Every stage BuildKit builds for the target (FROM parents, mounts, COPY --from), in file
    order."""
    all_stages = stages(text)
    by_name = {stage.name: stage for stage in all_stages if stage.name}
    needed: list[Stage] = []
    pending = [target_stage(text, target)]
    while pending:
        stage = pending.pop()
        if any(stage is seen for seen in needed):
            continue
        needed.append(stage)
        pending += [by_name[n] for n in {stage.base, *stage.references()} if n in by_name]
    return [stage for stage in all_stages if any(stage is n for n in needed)]


@dataclass
class ImageConfig:
    user: str | None = None
    exposed: list[int] = field(default_factory=list)
    healthcheck: str | None = None
    cmd: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def image_config(text: str, target: str | None) -> ImageConfig:
    """The config the built image carries, as far as the Dockerfile sets it (a stage based on
    an external image also inherits that image's config, which is not known here)."""
    config = ImageConfig()
    for stage in lineage(text, target):
        for word, rest in stage.body:
            if word == "USER":
                config.user = rest
            elif word == "EXPOSE":
                config.exposed += [int(port) for port in rest.split()]
            elif word == "HEALTHCHECK":
                config.healthcheck = rest
            elif word == "CMD":
                config.cmd = rest
            elif word == "ENV":
                config.env.update(re.findall(r"(\w+)=(\S+)", rest))
    return config


def arg_defaults(body: list[Instruction]) -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in body if word == "ARG" and "=" in rest)
