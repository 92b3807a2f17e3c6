"""Renders of the Airflow subchart, through the umbrella chart (as it is installed), shared by
the Airflow chart tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.helm import CHART_DIR, render_chart

AIRFLOW_CHART = CHART_DIR / "charts" / "airflow"
KIND_VALUES = CHART_DIR / "values-kind.yaml"
RELEASE = "fm"
NAMESPACE = "forest"


def airflow_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects the Airflow subchart rendered (its `app.kubernetes.io/name` label)."""
    return [
        doc
        for doc in docs
        if doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == "airflow"
    ]


def render_airflow(
    values: Mapping[str, Any] | None = None, *, kind: bool = False, **kwargs: Any
) -> list[dict[str, Any]]:
    """Render the umbrella chart with `values` under its `airflow` key; the Airflow objects only."""
    docs = render_chart(
        {"airflow": dict(values or {})},
        value_files=[KIND_VALUES] if kind else [],
        release=RELEASE,
        namespace=NAMESPACE,
        **kwargs,
    )
    return airflow_objects(docs)


@pytest.fixture(scope="session")
def umbrella_default() -> list[dict[str, Any]]:
    """Every object of the umbrella chart with default values (other subcharts' too)."""
    return render_chart(release=RELEASE, namespace=NAMESPACE)


@pytest.fixture(scope="session")
def airflow_default(umbrella_default: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return airflow_objects(umbrella_default)


@pytest.fixture(scope="session")
def airflow_kind() -> list[dict[str, Any]]:
    return render_airflow(kind=True)
