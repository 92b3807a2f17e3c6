"""Defect 4 of issue 12: a `# syntax=` line makes BuildKit fetch that frontend image from a
registry on every build, which fails wherever no registry can be reached (here, air-gapped CI).
The images must build with the engine's built-in Dockerfile frontend."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.helm import REPO_ROOT

DOCKERFILES = sorted(
    str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "images").rglob("Dockerfile")
)
# A parser directive: a `# key=value` comment before the first instruction (any case, spaces).
DIRECTIVE = re.compile(r"^#\s*syntax\s*=", re.IGNORECASE)


def test_the_images_folder_has_the_project_and_stand_in_dockerfiles() -> None:
    project = {
        f"images/{name}/Dockerfile" for name in ("airflow", "mlflow", "api-data", "inference")
    }
    assert project <= set(DOCKERFILES)


@pytest.mark.parametrize("path", DOCKERFILES)
def test_no_dockerfile_asks_for_a_frontend_image(path: str) -> None:
    for line in (REPO_ROOT / path).read_text().splitlines():
        if not line.startswith("#"):
            break  # directives are only valid before the first instruction or blank line
        assert not DIRECTIVE.match(line), f"{path}: {line!r} pulls a frontend image"


@pytest.mark.parametrize("path", DOCKERFILES)
def test_no_dockerfile_names_a_dockerfile_frontend_anywhere(path: str) -> None:
    text = Path(REPO_ROOT / path).read_text()
    assert "docker/dockerfile:" not in text
