"""Load a downloaded MLflow model the way the inference service serves it.

One function for the service and for the training-time cost measurement, so that what is
measured at training time (load time, latency) is what the service will pay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def flavors(local: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((local / "MLmodel").read_text())["flavors"])


def describe_form(local: Path | str) -> str:
    """'an sklearn model' or 'a python model' (for messages); never raises."""
    try:
        return "an sklearn model" if "sklearn" in flavors(Path(local)) else "a python model"
    except Exception:
        return "an sklearn model"  # no readable MLmodel: what most versions are


def load_for_serving(local: Path | str) -> Any:
    """An object with predict_proba(frame) and classes_: the sklearn model or the compiled one.

    sklearn models get n_jobs=1: single-record requests are the common case, and a thread
    pool inside one predict call costs more than it saves while other requests wait.
    """
    local = Path(local)
    if "sklearn" in flavors(local):
        try:
            import sklearn  # noqa: F401
        except ModuleNotFoundError:
            # The inference image serves the compiled form only (images/inference/Dockerfile).
            raise ModuleNotFoundError(
                "scikit-learn is not installed here: this service serves compiled (onnx) "
                "models only, and this version was logged as sklearn",
                name="sklearn",
            ) from None
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(str(local))
        get_params = getattr(estimator, "get_params", None)
        if get_params is not None:
            params = {k: 1 for k in get_params(deep=True) if k.split("__")[-1] == "n_jobs"}
            if params:
                estimator.set_params(**params)
        return estimator
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(local)).unwrap_python_model()
    if not callable(getattr(model, "predict_proba", None)):
        raise TypeError(f"the python model {type(model).__name__} has no predict_proba")
    return model
