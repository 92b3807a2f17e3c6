"""Real model versions for the inference tests: tiny scikit-learn pipelines that follow the
model contract (docs/ARCHITECTURE.md), logged with mlflow.sklearn and registered on a real
MLflow server, plus deliberately broken versions (an unreadable artifact, a model whose
predict fails on the contract's columns).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
import yaml
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from forest_mlops import schema

# Explicit requirements: inferring them costs ~9 s per log_model call.
PIP_REQUIREMENTS = ["scikit-learn==1.9.*", "pandas", "numpy", "cloudpickle"]
# MLflow 3's default, skops, refuses tree models unless their types are listed as trusted.
SERIALIZATION = mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE
EXPERIMENT = "inference-tests"


def read_rows(path: Path, n_rows: int, *, skip: int = 0) -> pd.DataFrame:
    """Rows skip..skip+n_rows of a course-layout CSV, typed as the model contract says."""
    frame = pd.read_csv(path, skiprows=range(1, skip + 1), nrows=n_rows)
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame


def train_pipeline(frame: pd.DataFrame, *, seed: int, trees: int = 15) -> Pipeline:
    prep = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), list(schema.CATEGORICAL_COLUMNS))],
        remainder="passthrough",
    )
    model = RandomForestClassifier(n_estimators=trees, max_depth=12, random_state=seed, n_jobs=1)
    pipeline = Pipeline([("prep", prep), ("model", model)])
    pipeline.fit(frame[list(schema.FEATURE_COLUMNS)], frame[schema.TARGET_COLUMN])
    return pipeline


def register(
    tracking_uri: str,
    name: str,
    model: Any,
    *,
    alias: str | None = "champion",
    metrics: dict[str, float] | None = None,
) -> str:
    """Log the model in a run, register it under `name`, optionally point `alias` at it."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run():
        if metrics:
            mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            pip_requirements=PIP_REQUIREMENTS,
            serialization_format=SERIALIZATION,
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    if alias is not None:
        MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)
    return version


def register_unreadable(
    tracking_uri: str, name: str, model: Any, tmp_path: Path, *, alias: str = "champion"
) -> str:
    """A version whose MLmodel is valid but whose pickle is garbage (a corrupt upload)."""
    local = tmp_path / f"broken-{uuid.uuid4().hex[:6]}"
    mlflow.sklearn.save_model(
        model, local, pip_requirements=PIP_REQUIREMENTS, serialization_format=SERIALIZATION
    )
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["sklearn"]
    (local / flavor["pickled_model"]).write_bytes(b"this is not a pickle")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    client = MlflowClient(tracking_uri)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(local), artifact_path="broken-model")
        source = f"{run.info.artifact_uri}/broken-model"
    version = str(client.create_model_version(name, source, run_id=run.info.run_id).version)
    client.set_registered_model_alias(name, alias, version)
    return version


def incompatible_pipeline(frame: pd.DataFrame, *, seed: int) -> Pipeline:
    """A fitted pipeline that expects a column the contract does not have: predict fails."""
    renamed = frame.rename(columns={schema.SOIL_COLUMN: "Soil_Code"})
    prep = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), ["Wilderness_Area", "Soil_Code"])],
        remainder="passthrough",
    )
    pipeline = Pipeline(
        [("prep", prep), ("model", RandomForestClassifier(n_estimators=3, random_state=seed))]
    )
    features = [*schema.NUMERIC_COLUMNS, "Wilderness_Area", "Soil_Code"]
    pipeline.fit(renamed[features], renamed[schema.TARGET_COLUMN])
    return pipeline
