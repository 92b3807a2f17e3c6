"""The served model and its lifecycle: load from the registry, poll, warm, swap, report.

`ModelHolder.current` is the one reference request handlers read. A check resolves
`models:/<name>@<alias>`; when the alias points at a new version, that version is downloaded,
unpickled and made to predict a smoke record off the request path, and only then assigned to
`current` (a single reference assignment, so a request sees either the old or the new model,
never a half-loaded one). A version that cannot be deserialised or cannot predict the smoke
record is rejected and remembered, and the old model keeps serving. When the registry or the
artifact store cannot be reached the old model keeps serving too; `staleness_seconds()` says
how long ago the registry was last seen.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from forest_mlops import schema

log = logging.getLogger(__name__)

N_CLASSES = len(schema.COVER_TYPE_NAMES)

# MLflow error codes meaning "the registry answered: there is no such model or alias".
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


class CheckStatus(StrEnum):
    UNCHANGED = "unchanged"  # the alias still points at the served version
    SWAPPED = "swapped"  # a new version is loaded and now serving
    NO_MODEL = "no_model"  # the registry has no version under the alias
    REJECTED = "rejected"  # the alias points at a version that failed to load or predict
    UNAVAILABLE = "unavailable"  # the registry or the artifact store could not be reached


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    message: str
    version: str | None = None  # the version the alias points at, when known


@dataclass(frozen=True)
class ServedModel:
    """A loaded, warmed model version and what identifies it."""

    name: str
    alias: str
    version: str
    run_id: str | None
    estimator: Any
    # Column of each predict_proba output among the 7 class ids, or None when the model's
    # classes are exactly 0..6 (then the output is used as is).
    class_positions: np.ndarray[Any, Any] | None
    training_metrics: Mapping[str, float]
    loaded_at: dt.datetime

    def predict_proba(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray[Any, Any]:
        """Class probabilities, shape (rows, 7), columns in class id order."""
        # Column-wise construction keeps the numeric columns int64 and the categories str,
        # as the model contract says, without per-row dict handling.
        frame = pd.DataFrame(columns, columns=list(schema.FEATURE_COLUMNS))
        proba = np.asarray(self.estimator.predict_proba(frame), dtype=np.float64)
        if self.class_positions is None:
            return proba
        full = np.zeros((proba.shape[0], N_CLASSES), dtype=np.float64)
        full[:, self.class_positions] = proba
        return full

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "run_id": self.run_id,
            "training_metrics": dict(self.training_metrics),
            "loaded_at": self.loaded_at.isoformat(),
        }


class ModelRejectedError(Exception):
    """A model version that was downloaded but cannot serve (bad artifact, failing predict)."""


class RegistryUnavailableError(Exception):
    """The registry or the artifact store did not answer."""


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str | None


class MlflowRegistry:
    """The few MLflow calls the holder makes, with the tracking URI passed explicitly."""

    def __init__(self, tracking_uri: str | None, timeout_seconds: float) -> None:
        # MLflow reads its HTTP settings from the environment on every request. Its default of
        # 7 retries with exponential backoff would keep one check busy for minutes during an
        # outage; the poll loop is the retry. Explicit MLflow settings still win.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault(
            "MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, math.ceil(timeout_seconds)))
        )
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def resolve(self, name: str, alias: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            version = self._client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                return None
            if exc.error_code == "PERMISSION_DENIED" and not self._model_exists(name):
                return None
            raise RegistryUnavailableError(_short(exc)) from exc
        except Exception as exc:
            raise RegistryUnavailableError(_short(exc)) from exc
        return VersionInfo(version=str(version.version), run_id=version.run_id or None)

    def _model_exists(self, name: str) -> bool:
        """MLflow's basic-auth app answers an alias lookup on a registered model that does not
        exist yet with 403, not 404 (seen on a fresh install: inference never became Ready
        and `helm install --wait` failed); the model itself answers 404 then."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                return False
            raise RegistryUnavailableError(_short(exc)) from exc
        return True

    def training_metrics(self, run_id: str | None) -> dict[str, float]:
        if not run_id:
            return {}
        try:
            return dict(self._client.get_run(run_id).data.metrics)
        except Exception as exc:
            raise RegistryUnavailableError(_short(exc)) from exc

    def load(self, name: str, version: str) -> Any:
        """Download the version's artifacts and load the model (sklearn, or compiled pyfunc)."""
        import mlflow.artifacts

        from forest_mlops.serving.loading import describe_form, load_for_serving

        with tempfile.TemporaryDirectory(prefix="forest-model-") as tmp:
            try:
                # Not artifact_uri="models:/name/version": MLflow resolves that through the
                # process-wide registry URI (MLFLOW_REGISTRY_URI, else MLFLOW_TRACKING_URI),
                # ignoring the one passed, so a stray variable sent the download to another
                # server. The client asks ours for the version's storage location instead.
                location = self._client.get_model_version_download_uri(name, version)
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            except Exception as exc:
                raise RegistryUnavailableError(
                    f"downloading version {version}: {_short(exc)}"
                ) from exc
            try:
                return load_for_serving(local)
            except Exception as exc:
                raise ModelRejectedError(
                    f"version {version} cannot be loaded as {describe_form(local)}: {_short(exc)}"
                ) from exc


def prepare(
    estimator: Any,
    *,
    name: str,
    alias: str,
    info: VersionInfo,
    metrics: Mapping[str, float],
    smoke_columns: Mapping[str, Sequence[Any]],
) -> ServedModel:
    """Check a freshly loaded estimator against the model contract and warm it up."""
    if not callable(getattr(estimator, "predict_proba", None)):
        raise ModelRejectedError(f"version {info.version} has no predict_proba")
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise ModelRejectedError(f"version {info.version} has no classes_ (is it fitted?)")
    try:
        class_ids = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise ModelRejectedError(
            f"version {info.version} predicts classes {list(classes)!r}, not class ids 0..6"
        ) from None
    if any(c not in schema.COVER_TYPES for c in class_ids) or len(set(class_ids)) != len(class_ids):
        raise ModelRejectedError(
            f"version {info.version} predicts classes {class_ids}, not class ids 0..6"
        )
    # Single-record requests are the common case: thread pools inside one predict call cost
    # more than they save and fight the other requests for the same cores.
    _limit_estimator_threads(estimator)
    positions = None if class_ids == list(schema.COVER_TYPES) else np.asarray(class_ids)
    model = ServedModel(
        name=name,
        alias=alias,
        version=info.version,
        run_id=info.run_id,
        estimator=estimator,
        class_positions=positions,
        training_metrics=dict(metrics),
        loaded_at=dt.datetime.now(dt.UTC),
    )
    try:
        proba = model.predict_proba(smoke_columns)
    except Exception as exc:
        raise ModelRejectedError(
            f"version {info.version} failed to predict the smoke record: {_short(exc)}"
        ) from exc
    n_rows = len(next(iter(smoke_columns.values())))
    if proba.shape != (n_rows, N_CLASSES) or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
        raise ModelRejectedError(
            f"version {info.version} returned probabilities of shape {proba.shape} that do "
            "not sum to 1 for the smoke record"
        )
    return model


def _limit_estimator_threads(estimator: Any) -> None:
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return
    params = {key: 1 for key in get_params(deep=True) if key.split("__")[-1] == "n_jobs"}
    if params:
        estimator.set_params(**params)


@dataclass
class RegistryState:
    """What the holder knows about the registry, for /model and /metrics."""

    last_success_monotonic: float | None = None
    last_success_at: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    last_status: CheckStatus | None = None
    alias_version: str | None = None
    rejected: dict[str, str] = field(default_factory=dict)  # version -> reason


class ModelHolder:
    """Holds the serving model and keeps it in step with the registry alias."""

    def __init__(
        self,
        *,
        registry: MlflowRegistry,
        name: str,
        alias: str,
        poll_interval: float,
        smoke_columns: Mapping[str, Sequence[Any]],
        on_check: Callable[[CheckResult], None] | None = None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.alias = alias
        self.poll_interval = poll_interval
        self.smoke_columns = smoke_columns
        self.current: ServedModel | None = None
        self.state = RegistryState()
        self.on_check = on_check
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def staleness_seconds(self) -> float | None:
        """Seconds since the registry last answered a check; None before the first answer."""
        last = self.state.last_success_monotonic
        return None if last is None else time.monotonic() - last

    def check(self, *, retry_rejected: bool = False) -> CheckResult:
        """Resolve the alias and swap in its version when it changed (one check at a time)."""
        with self._check_lock:
            result = self._check(retry_rejected=retry_rejected)
        state = self.state
        state.last_status = result.status
        if result.status is CheckStatus.UNAVAILABLE:
            state.last_error = result.message
            state.last_error_at = dt.datetime.now(dt.UTC)
            log.warning("registry check failed, still serving %s: %s", self._serving(), result)
        else:
            state.last_success_monotonic = time.monotonic()
            state.last_success_at = dt.datetime.now(dt.UTC)
            if result.status is CheckStatus.REJECTED:
                state.last_error = result.message
                state.last_error_at = state.last_success_at
            log.log(
                logging.WARNING if result.status is CheckStatus.REJECTED else logging.DEBUG,
                "registry check: %s",
                result,
            )
        if self.on_check is not None:
            self.on_check(result)
        return result

    def _serving(self) -> str:
        current = self.current
        return "no model" if current is None else f"version {current.version}"

    def _check(self, *, retry_rejected: bool) -> CheckResult:
        try:
            info = self.registry.resolve(self.name, self.alias)
        except RegistryUnavailableError as exc:
            return CheckResult(CheckStatus.UNAVAILABLE, f"registry unreachable: {exc}")
        self.state.alias_version = None if info is None else info.version
        if info is None:
            return CheckResult(
                CheckStatus.NO_MODEL,
                f"no version of model {self.name!r} has the alias {self.alias!r}",
            )
        current = self.current
        if current is not None and current.version == info.version:
            return CheckResult(CheckStatus.UNCHANGED, "up to date", info.version)
        reason = self.state.rejected.get(info.version)
        if reason is not None and not retry_rejected:
            return CheckResult(CheckStatus.REJECTED, reason, info.version)
        try:
            started = time.perf_counter()
            estimator = self.registry.load(self.name, info.version)
            metrics = self.registry.training_metrics(info.run_id)
            model = prepare(
                estimator,
                name=self.name,
                alias=self.alias,
                info=info,
                metrics=metrics,
                smoke_columns=self.smoke_columns,
            )
        except RegistryUnavailableError as exc:
            return CheckResult(CheckStatus.UNAVAILABLE, str(exc), info.version)
        except ModelRejectedError as exc:
            self.state.rejected[info.version] = str(exc)
            return CheckResult(CheckStatus.REJECTED, str(exc), info.version)
        self.current = model  # the swap: one reference assignment
        self.state.rejected.pop(info.version, None)
        previous = "nothing" if current is None else f"version {current.version}"
        message = (
            f"now serving version {info.version} (replaced {previous}; loaded and warmed in "
            f"{time.perf_counter() - started:.1f} s)"
        )
        log.info("%s %s", self.name, message)
        return CheckResult(CheckStatus.SWAPPED, message, info.version)

    def start(self) -> None:
        """Check now and then every poll_interval seconds, in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:
                # A bug in one check must not end polling: the next one may succeed.
                log.exception("unexpected error while checking the registry")
            self._stop.wait(self.poll_interval)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
