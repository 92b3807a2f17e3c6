"""The inference API over HTTP: a real `forest-mlops inference` process serving a real model
version from a real MLflow server (MariaDB backend, moto S3 artifacts)."""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any

import httpx
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forest_mlops import schema
from tests.conftest import MlflowServer
from tests.inference.conftest import RELOAD_TOKEN, InferenceService

EXAMPLE: dict[str, Any] = {
    "Elevation": 2862,
    "Aspect": 294,
    "Slope": 22,
    "Horizontal_Distance_To_Hydrology": 120,
    "Vertical_Distance_To_Hydrology": 18,
    "Horizontal_Distance_To_Roadways": 1273,
    "Hillshade_9am": 154,
    "Hillshade_Noon": 229,
    "Hillshade_3pm": 213,
    "Horizontal_Distance_To_Fire_Points": 1323,
    "Wilderness_Area": "Commanche",
    "Soil_Type": "C7757",
}


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    features = frame[list(schema.FEATURE_COLUMNS)]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in features.to_dict(orient="records")
    ]


def test_predictions_equal_the_directly_loaded_model(
    champion_service: InferenceService,
    mlflow_tracking_server: MlflowServer,
    holdout_frame: pd.DataFrame,
) -> None:
    name = champion_service.model_name
    mlflow.set_tracking_uri(mlflow_tracking_server.url)
    direct = mlflow.sklearn.load_model(f"models:/{name}@champion")
    features = holdout_frame[list(schema.FEATURE_COLUMNS)]
    expected = direct.predict_proba(features)

    with champion_service.client() as client:
        response = client.post("/predict", json=records_of(holdout_frame))
    assert response.status_code == 200, response.text
    answers = response.json()
    assert len(answers) == len(holdout_frame)
    got = np.array([[a["probabilities"][n] for n in schema.COVER_TYPE_NAMES] for a in answers])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert [a["cover_type"] for a in answers] == expected.argmax(axis=1).tolist()
    # The model contract: pyfunc's predict gives the same class ids.
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert [a["cover_type"] for a in answers] == list(pyfunc.predict(features))
    run_id = mlflow.MlflowClient().get_model_version_by_alias(name, "champion").run_id
    for answer in answers:
        assert answer["cover_type_name"] == schema.COVER_TYPE_NAMES[answer["cover_type"]]
        assert (answer["model_name"], answer["model_version"]) == (name, "1")
        assert answer["model_run_id"] == run_id


def test_one_record_gets_one_answer_and_comanche_is_accepted(
    champion_service: InferenceService,
) -> None:
    with champion_service.client() as client:
        single = client.post("/predict", json=EXAMPLE)
        alias = client.post("/predict", json={**EXAMPLE, "Wilderness_Area": "Comanche"})
    assert single.status_code == 200, single.text
    answer = single.json()
    assert isinstance(answer, dict)
    assert set(answer) == {
        "cover_type",
        "cover_type_name",
        "probabilities",
        "model_name",
        "model_version",
        "model_run_id",
    }
    assert list(answer["probabilities"]) == list(schema.COVER_TYPE_NAMES)
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    assert alias.status_code == 200, alias.text
    assert alias.json()["probabilities"] == answer["probabilities"]


@pytest.mark.parametrize(
    ("body", "detail", "messages"),
    [
        (
            {**EXAMPLE, "Aspect": 400},
            "1 invalid value(s): Aspect: 400 is outside 0..360",
            ["Aspect: 400 is outside 0..360"],
        ),
        (
            {**EXAMPLE, "Hillshade_9am": -1, "Slope": "steep"},
            "2 invalid value(s): Slope: not a number: 'steep'; Hillshade_9am: -1 is outside 0..255",
            ["Slope: not a number: 'steep'", "Hillshade_9am: -1 is outside 0..255"],
        ),
        (
            {k: v for k, v in EXAMPLE.items() if k != "Elevation"},
            "1 invalid value(s): Elevation: field required",
            ["Elevation: field required"],
        ),
        (
            {**EXAMPLE, "Cover_Type": 1},
            "1 invalid value(s): Cover_Type: unknown field (expected only the 12 feature columns)",
            ["Cover_Type: unknown field (expected only the 12 feature columns)"],
        ),
        (
            {**EXAMPLE, "Wilderness_Area": "Yosemite"},
            "1 invalid value(s): Wilderness_Area: unknown area 'Yosemite' (expected one of "
            "Rawah, Neota, Commanche, Cache)",
            [
                "Wilderness_Area: unknown area 'Yosemite' (expected one of Rawah, Neota, "
                "Commanche, Cache)"
            ],
        ),
        (
            {**EXAMPLE, "Soil_Type": "C1234"},
            "1 invalid value(s): Soil_Type: unknown soil code 'C1234' (expected one of the 40 "
            "ELU codes C2702..C8776)",
            [
                "Soil_Type: unknown soil code 'C1234' (expected one of the 40 ELU codes "
                "C2702..C8776)"
            ],
        ),
        (
            {**EXAMPLE, "Elevation": 2862.5},
            "1 invalid value(s): Elevation: expected an integer, got 2862.5",
            ["Elevation: expected an integer, got 2862.5"],
        ),
        (
            {**EXAMPLE, "Elevation": True},
            "1 invalid value(s): Elevation: expected an integer, got True",
            ["Elevation: expected an integer, got True"],
        ),
        (
            [EXAMPLE, {**EXAMPLE, "Slope": 91}],
            "1 invalid value(s): record 1: Slope: 91 is outside 0..90",
            ["record 1: Slope: 91 is outside 0..90"],
        ),
        ([], "the list of records is empty", []),
        (
            "Rawah",
            "expected one record (a JSON object with the 12 feature fields) or a list of "
            "records, got a string",
            [],
        ),
    ],
)
def test_invalid_records_get_clear_422_messages(
    champion_service: InferenceService, body: Any, detail: str, messages: list[str]
) -> None:
    with champion_service.client() as client:
        response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["detail"] == detail
    assert [e["message"] for e in answer["errors"]] == messages


def test_bad_json_and_oversized_batches_are_rejected(champion_service: InferenceService) -> None:
    with champion_service.client() as client:
        broken = client.post(
            "/predict", content=b'{"Elevation": 1', headers={"Content-Type": "application/json"}
        )
        too_many = client.post("/predict", json=[EXAMPLE] * 1001)
        at_limit = client.post("/predict", json=[EXAMPLE] * 1000)
    assert broken.status_code == 422
    assert broken.json()["detail"].startswith("the body is not valid JSON: ")
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == "1001 records in one request; the maximum is 1000"
    assert at_limit.status_code == 200
    assert len(at_limit.json()) == 1000


def test_model_health_and_ready_describe_the_served_version(
    champion_service: InferenceService,
) -> None:
    with champion_service.client() as client:
        model = client.get("/model").json()
        health = client.get("/health")
        ready = client.get("/ready")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"ready": True, "model_version": "1"}
    assert model["ready"] is True
    served = model["model"]
    assert served["name"] == champion_service.model_name
    assert served["alias"] == "champion"
    assert served["version"] == "1"
    assert re.fullmatch(r"[0-9a-f]{32}", served["run_id"])
    assert served["training_metrics"] == {"test_macro_f1": 0.5, "test_accuracy": 0.75}
    registry = model["registry"]
    assert registry["alias_version"] == "1"
    assert registry["last_error"] is None
    assert 0 <= registry["staleness_seconds"] < 60


def _metric(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + selector + '}') if labels else ''} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name}{{{selector}}} not in /metrics:\n{text[:3000]}"
    return float(match.group(1))


def test_metrics_count_requests_predictions_and_show_the_model(
    champion_service: InferenceService, holdout_frame: pd.DataFrame
) -> None:
    with champion_service.client() as client:
        before = client.get("/metrics").text
        answers = client.post("/predict", json=records_of(holdout_frame.iloc[:50])).json()
        client.post("/predict", json={**EXAMPLE, "Aspect": 999})
        after = client.get("/metrics").text

    def requests_total(text: str, status: str, version: str) -> float:
        try:
            return _metric(
                text, "forest_inference_requests_total", endpoint="/predict", method="POST",
                model_version=version, status=status,
            )  # fmt: skip
        except AssertionError:
            return 0.0

    # Answered requests carry the version that answered; refused ones, none.
    assert requests_total(after, "200", "1") == requests_total(before, "200", "1") + 1
    assert requests_total(after, "422", "") == requests_total(before, "422", "") + 1
    assert "forest_inference_request_duration_seconds_bucket{" in after
    predicted = pd.Series([a["cover_type_name"] for a in answers]).value_counts()
    for name, count in predicted.items():
        grew = _metric(after, "forest_inference_predictions_total", cover_type=str(name)) - (
            _metric(before, "forest_inference_predictions_total", cover_type=str(name))
            if f'cover_type="{name}"' in before
            else 0.0
        )
        assert grew == count
    assert _metric(after, "forest_inference_model_version") == 1.0
    # The registry's scores of the served version, from its run (what training logs).
    assert _metric(after, "forest_inference_model_test_accuracy") == 0.75
    assert _metric(after, "forest_inference_model_test_macro_f1") == 0.5
    # The single-record objective (0.015 s) is a bucket edge: the latency alert reads it.
    assert any(
        line.startswith("forest_inference_request_duration_seconds_bucket{")
        and 'endpoint="/predict"' in line
        and 'le="0.015"' in line
        for line in after.splitlines()
    )
    assert _metric(after, "forest_inference_ready") == 1.0
    assert 0 <= _metric(after, "forest_inference_registry_staleness_seconds") < 60


def test_csv_upload_returns_the_rows_with_their_predictions(
    champion_service: InferenceService, holdout_frame: pd.DataFrame
) -> None:
    sample = holdout_frame.iloc[:20]
    upload = sample.to_csv(index=False)  # the course layout: 12 features + Cover_Type
    with champion_service.client() as client:
        response = client.post("/predict/csv", content=upload, headers={"Content-Type": "text/csv"})
        json_answers = client.post("/predict", json=records_of(sample)).json()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 20
    assert list(rows[0])[:13] == list(schema.COLUMNS)
    assert [int(r["cover_type"]) for r in rows] == [a["cover_type"] for a in json_answers]
    assert [r["cover_type_name"] for r in rows] == [a["cover_type_name"] for a in json_answers]
    assert [r["Cover_Type"] for r in rows] == [str(v) for v in sample["Cover_Type"]]
    assert float(rows[0]["p_spruce_fir"]) == pytest.approx(
        json_answers[0]["probabilities"]["Spruce/Fir"], abs=1e-6
    )


def test_csv_extra_columns_pass_through_and_bad_values_name_their_line(
    champion_service: InferenceService, holdout_frame: pd.DataFrame
) -> None:
    sample = holdout_frame.iloc[:5].assign(site=[f"s{i}" for i in range(5)])
    ok = client_post_csv(champion_service, sample.to_csv(index=False))
    assert ok.status_code == 200, ok.text
    assert [r["site"] for r in csv.DictReader(io.StringIO(ok.text))] == list(sample["site"])

    bad = sample.copy()
    bad.loc[bad.index[2], "Aspect"] = 720
    response = client_post_csv(champion_service, bad.to_csv(index=False))
    assert response.status_code == 422
    assert response.json()["detail"] == "1 invalid value(s): line 4: Aspect: 720 is outside 0..360"

    header_only = client_post_csv(champion_service, "Elevation,Aspect\n1,2\n")
    assert header_only.status_code == 422
    assert header_only.json()["detail"] == (
        "the CSV header lacks the column(s): Slope, Horizontal_Distance_To_Hydrology, "
        "Vertical_Distance_To_Hydrology, Horizontal_Distance_To_Roadways, Hillshade_9am, "
        "Hillshade_Noon, Hillshade_3pm, Horizontal_Distance_To_Fire_Points, Wilderness_Area, "
        "Soil_Type"
    )


def client_post_csv(service: InferenceService, text: str) -> httpx.Response:
    return httpx.post(
        f"{service.url}/predict/csv",
        content=text,
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )


def test_predictions_are_written_to_the_inference_log(
    champion_service: InferenceService, holdout_frame: pd.DataFrame
) -> None:
    marker_elevation = 8999  # within bounds, absent from the real data: finds this test's rows
    records = [{**r, "Elevation": marker_elevation} for r in records_of(holdout_frame.iloc[:30])]
    with champion_service.client() as client:
        answers = client.post("/predict", json=records).json()
    engine = sa.create_engine(champion_service.env["INFERENCE_LOG_DATABASE_URL"])
    query = sa.text(
        "SELECT model_name, model_version, Elevation, Soil_Type, cover_type, probability, "
        "latency_ms FROM inference_log WHERE Elevation = :e ORDER BY id"
    )
    deadline = time.monotonic() + 20
    rows: list[Any] = []
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = conn.execute(query, {"e": marker_elevation}).fetchall()
        if len(rows) >= len(records):
            break
        time.sleep(0.2)
    engine.dispose()
    assert len(rows) == len(records)
    assert [r.cover_type for r in rows] == [a["cover_type"] for a in answers]
    assert [r.Soil_Type for r in rows] == [r["Soil_Type"] for r in records]
    for row, answer in zip(rows, answers, strict=True):
        assert (row.model_name, row.model_version) == (champion_service.model_name, "1")
        assert row.probability == pytest.approx(max(answer["probabilities"].values()))
        assert row.latency_ms > 0


def test_reload_needs_the_token(champion_service: InferenceService) -> None:
    with champion_service.client() as client:
        missing = client.post("/reload")
        wrong = client.post("/reload", headers={"Authorization": "Bearer nope"})
        right = client.post("/reload", headers={"Authorization": f"Bearer {RELOAD_TOKEN}"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json() == {
            "detail": "POST /reload needs the header Authorization: Bearer <token>"
        }
    assert right.status_code == 200, right.text
    assert right.json() == {
        "status": "unchanged",
        "detail": "up to date",
        "alias_version": "1",
        "serving_version": "1",
    }
