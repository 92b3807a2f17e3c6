"""Each image's dependency set (pyproject.toml: the core plus one extra) is enough for the code
that image runs, and nothing of another set is needed: checked here without Docker, in a child
Python of this venv where every module of a distribution outside the set fails to import.

The child runs what the image's chart command runs (the CLI's parser, the service's app, a
compiled champion loaded and asked for predictions) and also what belongs to another image,
which must fail with the missing import. The images themselves are checked the same way in
tests/images/test_dependency_sets.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from functools import cache
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from forest_mlops import schema, synthetic
from tests.support.helm import REPO_ROOT

# The extra each image installs (images/<image>/Dockerfile).
IMAGE_EXTRA = {
    "api-data": "api-data",
    "inference": "inference",
    "mlflow": "mlflow-server",
    "airflow": "train",
}
FIRST_PARTY = {"forest_mlops", "api_data", "inference_api", "tests"}

# Run first in the child: a finder ahead of the normal ones refuses the blocked top-level names.
BLOCKER = """
import importlib.abc, json, os, sys
class _OutsideTheSet(importlib.abc.MetaPathFinder):
    blocked = frozenset(json.loads(os.environ["FOREST_BLOCKED_MODULES"]))
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in self.blocked:
            raise ModuleNotFoundError(f"No module named {top!r} (outside this set)", name=top)
        return None
sys.meta_path.insert(0, _OutsideTheSet())
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def locked_set(extra: str) -> frozenset[str]:
    """The distributions `uv export --extra EXTRA` gives (core + the extra), by canonical name."""
    from tests.platform.test_images import uv

    export = ["export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes"]
    proc = subprocess.run(
        [uv(), *export, "--no-annotate", "--no-header", "--extra", extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return frozenset(
        canonical(line.split("==")[0]) for line in proc.stdout.splitlines() if "==" in line
    )


@cache
def blocked_modules(extra: str) -> frozenset[str]:
    """Top-level modules of this venv that only distributions outside the set provide."""
    allowed = locked_set(extra)
    blocked = set()
    for module, dists in metadata.packages_distributions().items():
        if module.lstrip("_") in FIRST_PARTY:
            continue
        if not any(canonical(d) in allowed for d in dists):
            blocked.add(module)
    return frozenset(blocked)


def run_with_only(extra: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "child.py"
    script.write_text(BLOCKER + textwrap.dedent(code))
    env = {**os.environ, "FOREST_BLOCKED_MODULES": json.dumps(sorted(blocked_modules(extra)))}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


# Every image starts the CLI (build_parser imports every subcommand module).
CLI = """
from forest_mlops.cli import build_parser
build_parser()
"""


def must_fail(module: str) -> str:
    """Importing `module` fails on a package outside the set (the blocker's refusal)."""
    return f"""
try:
    import {module}
except ModuleNotFoundError as exc:
    assert exc.name and exc.name.partition(".")[0] in _OutsideTheSet.blocked, exc
    print("refused:", exc)
else:
    raise SystemExit("{module} imported with only this set")
"""


@pytest.mark.parametrize(
    ("extra", "absent"),
    [
        ("api-data", {"mlflow", "mlflow-skinny", "scikit-learn", "scipy", "onnxruntime", "boto3"}),
        ("inference", {"mlflow", "scikit-learn", "scipy", "pyarrow", "flask", "boto3"}),
        ("mlflow-server", {"onnxruntime", "onnx", "kubernetes", "apache-airflow"}),
        ("train", {"mlflow", "flask", "pyarrow", "gunicorn", "apache-airflow"}),
    ],
)
def test_a_set_holds_none_of_the_other_images_packages(extra: str, absent: set[str]) -> None:
    assert not absent & locked_set(extra)
    assert "apache-airflow" not in locked_set(extra)  # only ever the Airflow base image's


def test_the_services_share_the_core_and_their_web_stack() -> None:
    shared = locked_set("api-data") & locked_set("inference") & locked_set("mlflow-server")
    assert {"numpy", "pandas", "pydantic", "sqlalchemy", "pymysql", "fastapi", "uvicorn"} <= shared


def test_api_data_serves_a_dataset_with_only_its_set(tmp_path: Path) -> None:
    synthetic.write_csv(tmp_path / "data.csv.gz", n_rows=3000, seed=0)
    proc = run_with_only(
        "api-data",
        CLI
        + """
import uvicorn
from fastapi.testclient import TestClient
from api_data.app import create_app
from api_data.settings import Settings
app = create_app(Settings(dataset="data.csv.gz", state_path="state.json", min_update_time=60))
with TestClient(app) as client:
    assert client.get("/health").status_code == 200
    data = client.get("/data", params={"group_number": 1})
    assert data.status_code == 200 and data.json()["data"], data.text
"""
        + must_fail("sklearn")
        + must_fail("forest_mlops.training.workflow"),
        tmp_path,
    )
    assert_ok(proc)


def _rows(n: int) -> pd.DataFrame:
    frame = pd.read_csv(synthetic.write_csv(Path("rows.csv"), n_rows=n, seed=1))
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame


@pytest.mark.slow
def test_inference_serves_a_compiled_champion_with_only_its_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled model (pyfunc + ONNX) is made here, with scikit-learn; the child, with only
    the inference set, loads it as the service does and predicts; a version logged as sklearn
    is refused with the reason."""
    import mlflow.pyfunc
    import mlflow.sklearn

    from forest_mlops.serving import pyfunc
    from forest_mlops.serving.compiled import compile_pipeline
    from forest_mlops.training.pipelines import EXTRA_TREES, CandidateSpec, build_pipeline

    monkeypatch.chdir(tmp_path)
    frame = _rows(2000)
    features, target = frame[list(schema.FEATURE_COLUMNS)], frame[schema.TARGET_COLUMN]
    pipeline = build_pipeline(CandidateSpec(EXTRA_TREES, {"n_estimators": 5}), n_jobs=1)
    pipeline.fit(features, target)
    forest, onnx_bytes = compile_pipeline(pipeline, frame.head(200))
    (tmp_path / "onnx").mkdir()
    mlflow.pyfunc.save_model(
        tmp_path / "compiled",
        python_model=pyfunc.CompiledForestModel(
            forest.encoding, [int(c) for c in forest.classes_], forest.n_trees
        ),
        artifacts={pyfunc.ARTIFACT_KEY: str(pyfunc.save_onnx(onnx_bytes, tmp_path / "onnx"))},
        pip_requirements=["onnxruntime"],
    )
    mlflow.sklearn.save_model(
        pipeline,
        tmp_path / "sklearn",
        pip_requirements=["scikit-learn"],
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    features.head(50).to_csv(tmp_path / "some.csv", index=False)
    expected = pipeline.predict(features.head(50)).tolist()

    proc = run_with_only(
        "inference",
        CLI
        + f"""
import pandas as pd
import inference_api.app
from forest_mlops.serving.loading import load_for_serving
rows = pd.read_csv("some.csv", dtype={{c: str for c in {list(schema.CATEGORICAL_COLUMNS)!r}}})
model = load_for_serving("compiled")
proba = model.predict_proba(rows)
assert proba.shape == (50, len(model.classes_))
assert model.classes_[proba.argmax(axis=1)].tolist() == {expected!r}
try:
    load_for_serving("sklearn")
except ModuleNotFoundError as exc:
    assert "serves compiled (onnx) models only" in str(exc), exc
else:
    raise SystemExit("an sklearn model loaded without scikit-learn")
"""
        + must_fail("forest_mlops.training.workflow"),
        tmp_path,
    )
    assert_ok(proc)


def test_the_mlflow_server_set_runs_the_server_and_the_cli(tmp_path: Path) -> None:
    proc = run_with_only(
        "mlflow-server",
        CLI
        + """
import boto3, pymysql, cryptography
from mlflow.server import app
assert app is not None
"""
        # Not inference_api.app any more: prometheus_client came in with the server's metrics
        # (prometheus-flask-exporter), and the app module imports; serving a model does not.
        + must_fail("onnxruntime"),
        tmp_path,
    )
    assert_ok(proc)


def test_the_train_set_imports_every_training_and_ingestion_step(tmp_path: Path) -> None:
    proc = run_with_only(
        "train",
        CLI
        + """
import forest_mlops.training.workflow, forest_mlops.training.tracking
import forest_mlops.serving.cost, forest_mlops.serving.pyfunc, forest_mlops.serving.compiled
import forest_mlops.ingestion.pipeline, forest_mlops.retrain, forest_mlops.uci_download
import sklearn.datasets, onnx, onnxruntime, matplotlib.figure, kubernetes, skops
"""
        + must_fail("flask"),
        tmp_path,
    )
    assert_ok(proc)
