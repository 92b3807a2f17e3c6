"""The model the inference benchmarks serve: the champion `forest-mlops train` produces.

A benchmark of the serving path is only a figure about the product when it serves the model the
product ships, so this runs the real command (`forest-mlops train`, its default profile) on the
75k real dev sample (the synthetic stand-in of the same size when the sample is absent, and then
the result says so) against the benchmark's own MLflow, and describes the version the `champion`
alias points at. The description goes into each benchmark's JSON under `served_model`.

Not a benchmark itself (the leading underscore keeps it out of `python -m bench`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.training import directory_bytes, load_table, source
from forest_mlops.process import VENV_BIN

MODEL_NAME = "forest-cover-type"
EXPERIMENT = "forest-cover-type"


def train_champion(workdir: Path, tracking_uri: str) -> tuple[dict[str, Any], Path]:
    """Run `forest-mlops train` on the dev sample; describe the champion it registered.

    Returns the description and the CSV it was trained on (the requests come from it).
    """
    from mlflow import MlflowClient

    csv, is_synthetic = source(workdir)
    database_url = f"sqlite:///{workdir / 'train.db'}"
    rows = load_table(database_url, csv)
    client = MlflowClient(tracking_uri)
    if tracking_uri.startswith("sqlite:"):
        # A file store keeps artifacts where the experiment says; without this, in the cwd.
        client.create_experiment(EXPERIMENT, artifact_location=(workdir / "artifacts").as_uri())
    argv = [
        str(VENV_BIN / "forest-mlops"), "--log-level", "WARNING", "train",
        "--database-url", database_url, "--tracking-uri", tracking_uri,
        "--model-name", MODEL_NAME, "--experiment-name", EXPERIMENT,
    ]  # fmt: skip
    if is_synthetic:
        argv.append("--synthetic")
    log = workdir / "train.log"
    with log.open("w") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise RuntimeError(f"forest-mlops train exited {code}:\n{log.read_text()[-3000:]}")
    return describe_champion(tracking_uri, rows=rows, data=csv.name, synthetic=is_synthetic), csv


def describe_champion(
    tracking_uri: str, *, rows: int, data: str, synthetic: bool
) -> dict[str, Any]:
    from mlflow import MlflowClient

    from forest_mlops.training import tracking

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    version = client.get_model_version_by_alias(MODEL_NAME, "champion")
    # `forest-mlops train` registers every version from a candidate run's logged model.
    assert version.run_id, f"version {version.version} names no run"
    run = client.get_run(version.run_id)
    served: dict[str, Any] = {
        "registered_model": f"{MODEL_NAME}@champion",
        "version": str(version.version),
        "candidate": run.data.tags.get("mlflow.runName", run.info.run_name),
        "family": run.data.tags.get(tracking.TAG_FAMILY),
        "trained_by": "forest-mlops train",
        "data": data,
        "rows": rows,
        "synthetic": synthetic,
        "test_accuracy": run.data.metrics.get("test_accuracy"),
        "test_macro_f1": run.data.metrics.get("test_macro_f1"),
    }
    model_uri = run.data.tags[tracking.TAG_MODEL_URI]
    location = urlparse(
        client.get_logged_model(model_uri.removeprefix("models:/")).artifact_location
    )
    if location.scheme == "file":
        served["model_bytes"] = directory_bytes(Path(location.path))
    return served


def label(served: dict[str, Any]) -> str:
    """One line for a table: which model, trained on what."""
    data = "SYNTHETIC rows" if served["synthetic"] else "rows of the real dev sample"
    return (
        f"{served['candidate']} (v{served['version']}, `forest-mlops train` on "
        f"{served['rows']:,} {data})"
    )
