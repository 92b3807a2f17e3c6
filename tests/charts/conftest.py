"""Renders of the umbrella chart shared by the chart test modules (helm template takes ~0.1 s,
but the policy tools that read these renders are slow: render once per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.helm import CHART_DIR, render_chart, render_manifest

KIND_VALUES = CHART_DIR / "values-kind.yaml"
# The Airflow subchart has its own tests (tests/charts/airflow/); these renders leave it out.
WITHOUT_AIRFLOW: dict[str, Any] = {"airflow": {"enabled": False}}


@pytest.fixture(scope="session")
def platform_docs() -> list[dict[str, Any]]:
    """The chart rendered with its default values, Airflow off."""
    return render_chart(WITHOUT_AIRFLOW)


@pytest.fixture(scope="session")
def kind_docs() -> list[dict[str, Any]]:
    """The chart rendered with values-kind.yaml, Airflow off."""
    return render_chart(WITHOUT_AIRFLOW, value_files=[KIND_VALUES])


@pytest.fixture(scope="session")
def kind_manifest_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """values-kind.yaml rendered to one multi-document file, Airflow off (for the policy tools)."""
    path = tmp_path_factory.mktemp("render") / "forest-mlops-kind.yaml"
    path.write_text(render_manifest(WITHOUT_AIRFLOW, value_files=[KIND_VALUES]))
    return path
