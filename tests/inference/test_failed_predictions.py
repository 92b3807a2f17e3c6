"""A model that raises on a request: the client gets a 500 and the request metrics count it
against the version that raised, so "5xx by model version" points at a bad new version.

In-process (FastAPI's TestClient, no registry): the served model is set on the app's holder
directly, an estimator that answers the holder's smoke rows and raises on one elevation, as a
version with a bug on some inputs would. The registry path to a served model is
tests/inference/test_lifecycle.py's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from forest_mlops.load import records
from inference_api.app import create_app
from inference_api.model_holder import N_CLASSES, ServedModel
from inference_api.settings import Settings
from tests.support import exposition

POISON_ELEVATION = 1234


class RaisesOnOneElevation:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        if (frame["Elevation"] == POISON_ELEVATION).any():
            raise ValueError("a bug this version has on some inputs")
        return np.full((len(frame), N_CLASSES), 1 / N_CLASSES)


def test_a_failing_version_answers_500_counted_against_that_version() -> None:
    # Nothing listens on port 9: the holder never starts (no lifespan), so it is never asked.
    app = create_app(Settings(tracking_uri="http://127.0.0.1:9"))
    app.state.holder.current = ServedModel(
        name="forest-cover-type",
        alias="champion",
        version="7",
        run_id=None,
        estimator=RaisesOnOneElevation(),
        class_positions=None,
        training_metrics={},
        loaded_at=dt.datetime.now(dt.UTC),
    )
    good = records.generated_records()[0]
    client = TestClient(app, raise_server_exceptions=False)

    assert client.post("/predict", json=good).status_code == 200
    assert client.post("/predict", json={**good, "Elevation": POISON_ELEVATION}).status_code == 500

    counted = exposition.samples(client.get("/metrics").text, "forest_inference_requests_total")
    predict = "endpoint=/predict,method=POST"
    assert counted[f"{predict},model_version=7,status=200"] == 1
    assert counted[f"{predict},model_version=7,status=500"] == 1
    # No 500 without a version: the error belongs to the model that raised.
    assert not [
        labels for labels in counted if "model_version=," in labels and "status=5" in labels
    ]
