"""Generated credentials and renders (issue 14, defect 5).

`helm template` / `skaffold render` have no cluster to `lookup`: without a seed every render
draws new passwords, so a GitOps diff never settles. With global.generatedSecretsSeed (never a
default: the user passes one) every generated value derives from it and the render repeats;
in a cluster the values already stored still win (test_secret_lookup.py). NOTES.txt names the
Secret that really holds the Airflow password.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.support.helm import HelmError, render_chart, render_notes

SEED = "d3adbeefd3adbeefd3adbeefd3adbeefd3adbeef"


def secrets(values: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
        for d in render_chart(values)
        if d["kind"] == "Secret"
    }


def test_a_seed_makes_every_generated_secret_repeat() -> None:
    values = {"global": {"generatedSecretsSeed": SEED}}
    first, second = secrets(values), secrets(values)
    assert set(first) >= {
        "fm-mysql",
        "fm-postgresql",
        "fm-minio",
        "fm-inference",
        "fm-airflow",
        "fm-mlflow-auth",
    }
    assert first == second
    every = [v for data in first.values() for v in data.values()]
    assert len(set(every)) == len(every), "two generated values are equal"
    assert SEED not in "".join(every)


def test_the_seed_and_the_release_both_change_every_value() -> None:
    base = secrets({"global": {"generatedSecretsSeed": SEED}})
    other = secrets({"global": {"generatedSecretsSeed": SEED[::-1]}})
    for name, data in base.items():
        for key, value in data.items():
            assert other[name][key] != value, f"{name}/{key} ignores the seed"


def test_lengths_and_formats_hold_with_a_seed() -> None:
    data = secrets({"global": {"generatedSecretsSeed": SEED}})
    assert len(data["fm-minio"]["root-password"]) == 40
    assert len(data["fm-mysql"]["root-password"]) == 32
    # Airflow's fernet key: 32 bytes, url-safe base64
    assert len(base64.urlsafe_b64decode(data["fm-airflow"]["fernet-key"])) == 32


def test_without_a_seed_renders_draw_new_values() -> None:
    first, second = secrets({}), secrets({})
    assert first["fm-mysql"] != second["fm-mysql"]
    # No fixed MLflow password either: the admin login of the UI included.
    for key, value in first["fm-mlflow-auth"].items():
        assert value != second["fm-mlflow-auth"][key], key


def test_a_short_seed_is_refused() -> None:
    with pytest.raises(HelmError, match="shorter than 32"):
        render_chart({"global": {"generatedSecretsSeed": "short"}})


def test_notes_name_an_existing_airflow_secret() -> None:
    notes = render_notes({"airflow": {"secrets": {"existingSecret": "my-airflow"}}})
    assert "get secret my-airflow -o jsonpath='{.data.admin-password}'" in notes
    assert "fm-airflow -o" not in notes
    assert "get secret fm-airflow -o jsonpath='{.data.admin-password}'" in render_notes()
