"""Generated credentials survive an upgrade: with the release's Secrets already in the
namespace, the chart renders their values back (Helm `lookup`) instead of new random ones.

There is no cluster here: `helm template --dry-run=server` talks to a stand-in API server
(tests/charts/kube_api_stub.py) that only answers discovery and GET of these Secrets."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.charts.kube_api_stub import kube_api_stub
from tests.support.helm import CHART_DIR, find, tool

EXISTING = {
    ("forest", "fm-mysql"): {
        "root-password": "kept-root",
        "train-password": "kept-train",
        "mlflow-password": "kept-mlflow",
        # inference-password missing: added by a later chart version, so generated now.
    },
    ("forest", "fm-postgresql"): {"airflow-password": "kept-airflow"},
    ("forest", "fm-minio"): {"root-user": "kept-user", "root-password": "kept-minio"},
    ("forest", "fm-inference"): {"reload-token": "kept-reload"},
    ("forest", "fm-api-data"): {"restart-token": "kept-restart"},
    # MLflow's logins: an upgrade must keep them, as the clients' Secret refs and the users in
    # the auth store (re-applied from this Secret at each server start) must agree.
    ("forest", "fm-mlflow-auth"): {
        "admin-password": "kept-admin",
        "train-password": "kept-mlflow-train",
        "inference-password": "kept-mlflow-inference",
        "flask-secret-key": "kept-flask",
    },
}


def render_with_cluster(kubeconfig: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    values_file = kubeconfig.parent / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = subprocess.run(
        [
            tool("helm"),
            "template",
            "fm",
            str(CHART_DIR),
            "--namespace",
            "forest",
            "--values",
            str(values_file),
            "--dry-run=server",
            "--disable-openapi-validation",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def decoded(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    data = find(docs, "Secret", name)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def test_existing_credentials_are_read_back(tmp_path):
    values = WITHOUT_AIRFLOW | {"api-data": {"restartToken": {"enabled": True}}}
    with kube_api_stub(tmp_path, release="fm", secrets=EXISTING) as kubeconfig:
        docs = render_with_cluster(kubeconfig, values)
    mysql = decoded(docs, "fm-mysql")
    assert {k: v for k, v in mysql.items() if k != "inference-password"} == EXISTING[
        ("forest", "fm-mysql")
    ]
    assert len(mysql["inference-password"]) == 32  # the missing key is generated
    assert decoded(docs, "fm-minio") == EXISTING[("forest", "fm-minio")]
    assert decoded(docs, "fm-postgresql") == EXISTING[("forest", "fm-postgresql")]
    assert decoded(docs, "fm-inference") == EXISTING[("forest", "fm-inference")]
    assert decoded(docs, "fm-api-data") == EXISTING[("forest", "fm-api-data")]
    assert decoded(docs, "fm-mlflow-auth") == EXISTING[("forest", "fm-mlflow-auth")]


def test_empty_namespace_gets_new_credentials(tmp_path):
    with kube_api_stub(tmp_path, release="fm", secrets={}) as kubeconfig:
        docs = render_with_cluster(kubeconfig, WITHOUT_AIRFLOW)
    assert not any(value.startswith("kept-") for value in decoded(docs, "fm-mysql").values())
    assert len(decoded(docs, "fm-minio")["root-password"]) == 40
    assert len(decoded(docs, "fm-postgresql")["airflow-password"]) == 32
    mlflow_auth = decoded(docs, "fm-mlflow-auth")
    assert set(mlflow_auth) == {
        "admin-password",
        "train-password",
        "inference-password",
        "flask-secret-key",
    }
    assert all(len(v) == 32 and not v.startswith("kept-") for v in mlflow_auth.values())
