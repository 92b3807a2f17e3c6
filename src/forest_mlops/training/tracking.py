"""MLflow tracking: one experiment, a parent run per training run, a nested run per candidate.

Parent run (one per DAG run or `forest-mlops train`): lineage tags (rows used, batches, data
hash, DAG run id, synthetic or not), the profile, and after evaluation the winner and its
metrics. Candidate runs (children, `mlflow.parentRunId`): params, validation and test metrics
(accuracy, macro-F1, per-class F1), fit time, confusion matrices, feature importances, and the
model (sklearn flavour, signature, input example, explicit pip requirements: inferring them
costs ~9 s a model).

Runs are addressed by id through MlflowClient, so each step can run in its own process: the
parent run id travels in XCom and the steps find everything else in MLflow.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from importlib import metadata
from typing import Any, Final
from urllib.parse import urlparse

import httpx
import pandas as pd
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from forest_mlops.serving import cost
from forest_mlops.serving.compiled import NotCompilableError
from forest_mlops.training import evaluate
from forest_mlops.training.pipelines import SERVE_ONNX
from forest_mlops.training.search import CandidateResult

log = logging.getLogger(__name__)

MODEL_ARTIFACT: Final = "model"
# Tags: lineage (on the parent, the candidates and the registered version) ...
TAG_ROWS: Final = "data.rows_used"
TAG_ROWS_TRAIN: Final = "data.rows_train"
TAG_ROWS_VALIDATION: Final = "data.rows_validation"
TAG_ROWS_TEST: Final = "data.rows_test"
TAG_BATCHES: Final = "data.batches"
TAG_DATA_HASH: Final = "data.hash"
TAG_SNAPSHOT_MAX_ID: Final = "data.max_row_id"
TAG_SYNTHETIC: Final = "data.synthetic"
TAG_DAG_RUN_ID: Final = "airflow.dag_run_id"
TAG_TRIGGER: Final = "training.trigger"
TAG_PROFILE: Final = "training.profile"
# ... and the run's roles.
TAG_ROLE: Final = "training.role"  # "parent" or "candidate"
TAG_FAMILY: Final = "training.family"
TAG_MODEL_URI: Final = "training.model_uri"
TAG_WINNER_RUN: Final = "training.winner_run_id"
TAG_WINNER_NAME: Final = "training.winner"
TAG_IS_WINNER: Final = "training.is_winner"
TAG_SERVING_FORM: Final = "serving.form"  # how the logged model serves: sklearn or onnx

# The serving environment of the logged model, pinned to what trained it. The pipeline's
# first step (forest_mlops.training.features.TerrainFeatures) comes from this project's own
# wheel, which every image installs; it is not on PyPI, so it is not listed here.
_PINNED: Final = ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops")
# The compiled form needs no sklearn at serving time, but the project's wheel (which holds the
# python model class) depends on it anyway.
_PINNED_COMPILED: Final = (*_PINNED, "onnx", "onnxruntime")

# MLflow 3 saves sklearn models with skops, which loads only types it knows to be safe unless
# the model lists more. These are the types our pipelines hold beyond skops' defaults, reviewed:
# our stateless feature step, the fitted trees of the forests and of HistGradientBoosting (node
# arrays skops cannot bounds-check: we trust models we trained and store in our own registry),
# and the partial(check_array) HistGradientBoosting keeps. A new type in a pipeline makes
# log_model fail loudly, so this list is extended deliberately, not silently.
SKOPS_TRUSTED_TYPES: Final = (
    "forest_mlops.training.features.TerrainFeatures",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",
    "sklearn.utils.validation.check_array",
)


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server does not answer."""


def pip_requirements(names: tuple[str, ...] = _PINNED) -> list[str]:
    """`name==version` as installed here. MLflow is whichever distribution trained: the full
    mlflow (dev venv), or mlflow-skinny alone (the Airflow image's `train` set)."""
    pins = []
    for name in names:
        if name == "mlflow":
            try:
                metadata.version("mlflow")
            except metadata.PackageNotFoundError:
                name = "mlflow-skinny"
        pins.append(f"{name}=={metadata.version(name)}")
    return pins


def check_server(tracking_uri: str, *, attempts: int = 3, timeout: float = 5.0) -> None:
    """Fail fast, with the URI in the message, when an HTTP tracking server is down.

    Without this, MLflow's client retries each request for minutes before failing, and a
    training run would only find out after fitting every candidate.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme not in ("http", "https"):
        return  # a local store (sqlite:///, file:) has no server to be down

    @retry(
        retry=retry_if_exception_type(httpx.HTTPError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=4),
        reraise=True,
    )
    def health() -> None:
        response = httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=timeout)
        response.raise_for_status()

    try:
        health()
    except httpx.HTTPError as exc:
        raise TrackingUnavailable(
            f"MLflow tracking server {tracking_uri} is not reachable "
            f"({type(exc).__name__}: {exc}); nothing was trained or registered"
        ) from exc


def client(tracking_uri: str) -> Any:
    import mlflow
    from mlflow import MlflowClient

    # Model loading (pyfunc) and log_model use the fluent API's global URIs.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(mlflow_client: Any, name: str) -> str:
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            mlflow_client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    return str(mlflow_client.create_experiment(name))


def start_parent_run(
    mlflow_client: Any, experiment_id: str, run_name: str, tags: Mapping[str, str]
) -> str:
    run = mlflow_client.create_run(
        experiment_id, run_name=run_name, tags={**tags, TAG_ROLE: "parent"}
    )
    return str(run.info.run_id)


def log_candidate(
    experiment_id: str,
    parent_run_id: str,
    result: CandidateResult,
    *,
    validation: pd.DataFrame,
    input_example: pd.DataFrame,
    tags: Mapping[str, str],
) -> str:
    """Log one fitted candidate as a nested run of the parent; returns the child run id."""
    import mlflow
    from mlflow.models import infer_signature

    pipeline = result.pipeline
    if pipeline is None:
        raise ValueError(f"{result.name}: the fitted pipeline was already dropped")
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=result.name,
        parent_run_id=parent_run_id,
        tags={**tags, TAG_ROLE: "candidate", TAG_FAMILY: result.spec.family},
    ) as run:
        mlflow.log_params(
            {"family": result.spec.family, "serving": result.spec.serving, **result.spec.params}
        )
        mlflow.log_metrics(
            {
                **result.validation.as_metrics("validation"),
                **result.test.as_metrics("test"),
                "fit_seconds": result.fit_seconds,
            }
        )
        for part, scores in (("validation", result.validation), ("test", result.test)):
            figure = evaluate.confusion_figure(scores, f"{result.name} ({part})")
            mlflow.log_figure(figure, f"confusion_matrix_{part}.png")
        importances, method = evaluate.feature_importances(pipeline, validation)
        mlflow.log_dict({"method": method, "importances": importances}, "feature_importances.json")
        mlflow.log_figure(
            evaluate.importance_figure(importances, method, result.name),
            "feature_importances.png",
        )
        with warnings.catch_warnings():
            # Integer columns are the contract (docs/ARCHITECTURE.md): missing values are
            # rejected by the serving API before the model, so MLflow's hint does not apply.
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            signature = infer_signature(input_example, pipeline.predict(input_example))
        info = None
        if result.spec.serving == SERVE_ONNX:
            try:
                info = _log_compiled(pipeline, validation, signature, input_example)
                mlflow.set_tag(TAG_SERVING_FORM, SERVE_ONNX)
            except NotCompilableError as exc:
                # Still a candidate: logged as sklearn, and its measured cost says the rest.
                log.warning("%s: not compiled (%s); logged as sklearn", result.name, exc)
                mlflow.set_tag(TAG_SERVING_FORM, f"sklearn (not compilable: {exc})")
        if info is None:
            info = mlflow.sklearn.log_model(
                pipeline,
                name=MODEL_ARTIFACT,
                signature=signature,
                input_example=input_example,
                pip_requirements=pip_requirements(),
                serialization_format="skops",
                skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
            )
            if result.spec.serving != SERVE_ONNX:
                mlflow.set_tag(TAG_SERVING_FORM, result.spec.serving)
        # Measured on the logged artifact, downloaded and loaded as the service does.
        mlflow.log_metrics(cost.measure(info.model_uri, validation).as_metrics())
        mlflow.set_tag(TAG_MODEL_URI, info.model_uri)
        return str(run.info.run_id)


def _log_compiled(
    pipeline: Any, validation: pd.DataFrame, signature: Any, input_example: pd.DataFrame
) -> Any:
    """Compile the trees (refused unless they predict like the pipeline) and log them as pyfunc."""
    import tempfile
    import time
    from pathlib import Path

    import mlflow

    from forest_mlops.serving import pyfunc

    started = time.perf_counter()
    model, onnx_bytes = pyfunc.compile_for_serving(pipeline, validation)
    mlflow.log_metric("compile_seconds", time.perf_counter() - started)
    with tempfile.TemporaryDirectory(prefix="compiled-forest-") as tmp:
        path = pyfunc.save_onnx(onnx_bytes, Path(tmp))
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=model,
            artifacts={pyfunc.ARTIFACT_KEY: str(path)},
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements(_PINNED_COMPILED),
        )


def candidate_runs(mlflow_client: Any, experiment_id: str, parent_run_id: str) -> list[Any]:
    """The finished candidate runs of a parent run, oldest first."""
    runs = mlflow_client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.mlflow.parentRunId = '{parent_run_id}' "
            f"and tags.`{TAG_ROLE}` = 'candidate' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time ASC"],
        max_results=1000,
    )
    return list(runs)


def end_run(mlflow_client: Any, run_id: str, *, failed: bool = False) -> None:
    mlflow_client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
