"""The inference HTTP API: a thin FastAPI layer over the model holder and the batcher.

Routes: POST /predict, POST /predict/csv, GET /model, GET /health, GET /ready, GET /metrics,
POST /reload and the web page at GET /. Request bodies are parsed with orjson and validated
by `records` directly (not by FastAPI's body machinery) so that one code path gives the same
422 messages for JSON and CSV, and the hot path avoids a second conversion.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter

from forest_mlops import database, schema

from . import records
from .batcher import MicroBatcher, NoModelError, Prediction, PredictionFailed
from .inference_log import InferenceLogWriter, LoggedRequest
from .metrics import MODEL_VERSION_STATE, RequestMetricsMiddleware, ServiceMetrics
from .model_holder import CheckStatus, MlflowRegistry, ModelHolder
from .settings import Settings

ROUTES = ("/", "/predict", "/predict/csv", "/model", "/health", "/ready", "/metrics", "/reload")
_NAMES = schema.COVER_TYPE_NAMES
# CSV result columns for the class probabilities: p_spruce_fir, p_lodgepole_pine, ...
PROBABILITY_COLUMNS = tuple("p_" + re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_") for n in _NAMES)
_RELOAD_STATUS = {
    CheckStatus.UNCHANGED: 200,
    CheckStatus.SWAPPED: 200,
    CheckStatus.NO_MODEL: 404,
    CheckStatus.REJECTED: 409,
    CheckStatus.UNAVAILABLE: 503,
}


class JSONBytes(JSONResponse):
    """JSON rendered by orjson (numpy arrays included).

    A JSONResponse, so that the published schema says these routes answer JSON (a plain
    Response subclass made FastAPI document every answer as a string, which no answer is).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _record_schema(max_batch: int) -> dict[str, Any]:
    record = TypeAdapter(records.FeatureRecord).json_schema()
    return {
        "anyOf": [record, {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}]
    }


def present(prediction: Prediction) -> list[dict[str, Any]]:
    """One answer per predicted row."""
    model = prediction.model
    proba = prediction.probabilities
    class_ids = proba.argmax(axis=1).tolist()
    return [
        {
            "cover_type": class_id,
            "cover_type_name": _NAMES[class_id],
            "probabilities": dict(zip(_NAMES, row, strict=True)),
            "model_name": model.name,
            "model_version": model.version,
            "model_run_id": model.run_id,
        }
        for class_id, row in zip(class_ids, proba.tolist(), strict=True)
    ]


def result_csv(header: Sequence[str], rows: Sequence[Sequence[str]], prediction: Prediction) -> str:
    """The uploaded rows with the prediction and probabilities appended."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [*header, "cover_type", "cover_type_name", *PROBABILITY_COLUMNS, "model_version"]
    )
    proba = prediction.probabilities
    for row, class_id, p in zip(
        rows, proba.argmax(axis=1).tolist(), proba.round(6).tolist(), strict=True
    ):
        writer.writerow([*row, class_id, _NAMES[class_id], *p, prediction.model.version])
    return out.getvalue()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    holder = ModelHolder(
        registry=MlflowRegistry(settings.tracking_uri, settings.registry_timeout),
        name=settings.model_name,
        alias=settings.model_alias,
        poll_interval=settings.poll_interval,
        smoke_columns=records.example_columns(),
    )
    metrics = ServiceMetrics(holder)
    holder.on_check = metrics.record_check
    batcher = MicroBatcher(holder)
    log_writer = (
        InferenceLogWriter(
            settings.log_database_url.get_secret_value(),
            queue_size=settings.log_queue_size,
            on_drop=metrics.log_dropped.inc,
        )
        if settings.log_database_url is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if log_writer is not None:
            log_writer.start()
        holder.start()
        try:
            yield
        finally:
            holder.stop()
            batcher.close()
            if log_writer is not None:
                log_writer.close()

    app = FastAPI(
        title="Forest cover type inference",
        description="Predicts the forest cover type of a location with the registry's "
        f"`{settings.model_name}@{settings.model_alias}` model.",
        lifespan=lifespan,
        default_response_class=JSONBytes,
    )
    app.state.holder = holder
    app.state.settings = settings
    app.state.log_writer = log_writer
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, routes=ROUTES)

    async def run_prediction(request: Request, parsed: records.ParsedRequest) -> Prediction:
        started = time.perf_counter()
        try:
            prediction = await batcher.predict(parsed.columns, parsed.n_rows)
        except PredictionFailed as exc:
            # Still a 500 (the exception goes on), but counted against the version that raised.
            setattr(request.state, MODEL_VERSION_STATE, exc.model_version)
            raise
        # The request metrics' model_version label (RequestMetricsMiddleware).
        setattr(request.state, MODEL_VERSION_STATE, prediction.model.version)
        metrics.record_predictions(prediction.probabilities.argmax(axis=1))
        if log_writer is not None:
            log_writer.submit(
                LoggedRequest(
                    columns=parsed.columns,
                    probabilities=prediction.probabilities,
                    model_name=prediction.model.name,
                    model_version=prediction.model.version,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                    predicted_at=database.utcnow(),
                )
            )
        return prediction

    @app.post(
        "/predict",
        summary="Predict the cover type of one record or a list of records",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _record_schema(settings.max_batch)}},
            }
        },
        responses={
            422: {"description": "invalid records: `detail` and one message per problem"},
            503: {"description": "no model is loaded yet"},
        },
    )
    async def predict(request: Request) -> Response:
        try:
            parsed = records.parse_json_body(await request.body(), max_batch=settings.max_batch)
            prediction = await run_prediction(request, parsed)
        except records.RequestError as exc:
            return JSONBytes(exc.body(), status_code=422)
        except NoModelError as exc:
            return JSONBytes({"detail": str(exc)}, status_code=503)
        answers = present(prediction)
        return JSONBytes(answers[0] if parsed.single else answers)

    @app.post(
        "/predict/csv",
        summary="Predict every row of a CSV (header with the 12 feature columns)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
        response_class=Response,
        responses={
            200: {"content": {"text/csv": {}}},
            422: {
                "description": "not UTF-8, or invalid rows: `detail` and one message per problem",
                "content": {"application/json": {}},
            },
            503: {"description": "no model is loaded yet", "content": {"application/json": {}}},
        },
    )
    async def predict_csv(request: Request) -> Response:
        try:
            text = (await request.body()).decode("utf-8-sig")
        except UnicodeDecodeError:
            return JSONBytes({"detail": "the CSV is not UTF-8 text", "errors": []}, 422)
        try:
            header, rows, parsed = records.parse_csv(text, max_batch=settings.max_batch)
            prediction = await run_prediction(request, parsed)
        except records.RequestError as exc:
            return JSONBytes(exc.body(), status_code=422)
        except NoModelError as exc:
            return JSONBytes({"detail": str(exc)}, status_code=503)
        return Response(
            result_csv(header, rows, prediction),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="predictions.csv"'},
        )

    @app.get("/model", summary="The served model, the registry's state and staleness")
    async def model_info() -> Response:
        current = holder.current
        state = holder.state
        staleness = holder.staleness_seconds()
        return JSONBytes(
            {
                "ready": current is not None,
                "model": None if current is None else current.describe(),
                "registry": {
                    "model_name": holder.name,
                    "alias": holder.alias,
                    "alias_version": state.alias_version,
                    "poll_interval_seconds": holder.poll_interval,
                    "last_check_status": state.last_status,
                    "last_success_at": _iso(state.last_success_at),
                    "staleness_seconds": None if staleness is None else round(staleness, 3),
                    "last_error": state.last_error,
                    "last_error_at": _iso(state.last_error_at),
                    "rejected_versions": dict(state.rejected),
                },
            }
        )

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> Response:
        return JSONBytes({"status": "ok"})

    @app.get("/ready", summary="Readiness: a model is loaded")
    async def ready(no_champion_ok: bool = False) -> Response:
        # no_champion_ok (the chart's readiness probe): also ready when the registry answered
        # that no version has the alias yet. A fresh install has no champion until its DAGs
        # train one, and a probe that waited for it would keep `helm install --wait` from ever
        # finishing; a pod whose registry does have a champion stays unready until it has
        # loaded it, so a rollout never swaps a serving pod for an empty one.
        current = holder.current
        if current is None:
            state = holder.state
            cold = state.alias_version is None and state.last_success_monotonic is not None
            if no_champion_ok and cold:
                return JSONBytes({"ready": True, "model_version": None})
            return JSONBytes({"ready": False, "detail": batcher.no_model_reason()}, 503)
        return JSONBytes({"ready": True, "model_version": current.version})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/reload", summary="Check the registry now and swap in a moved alias")
    async def reload(request: Request) -> Response:
        token = settings.reload_token
        if token is not None and not _bearer_matches(request, token.get_secret_value()):
            return JSONBytes(
                {"detail": "POST /reload needs the header Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        # A forced check also retries versions rejected earlier (e.g. after fixing a bug).
        result = await run_in_threadpool(holder.check, retry_rejected=True)
        current = holder.current
        return JSONBytes(
            {
                "status": result.status,
                "detail": result.message,
                "alias_version": result.version,
                "serving_version": None if current is None else current.version,
            },
            status_code=_RELOAD_STATUS[result.status],
        )

    page = _render_page(settings)

    @app.get("/", summary="The prediction web page", include_in_schema=False)
    async def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("inference_api") / "static")),
        name="static",
    )
    return app


def _render_page(settings: Settings) -> str:
    config = {
        "numeric": {c: list(schema.NUMERIC_BOUNDS[c]) for c in schema.NUMERIC_COLUMNS},
        "wilderness": list(schema.WILDERNESS_AREAS),
        "soil": list(schema.SOIL_TYPES),
        "columns": list(schema.FEATURE_COLUMNS),
        "classes": list(schema.COVER_TYPE_NAMES),
        "example": records.EXAMPLE_RECORD,
        "maxBatch": settings.max_batch,
    }
    # "</" would end the <script> element early; JSON allows the escaped form.
    blob = orjson.dumps(config).decode().replace("</", "<\\/")
    html = (resources.files("inference_api") / "static" / "index.html").read_text("utf-8")
    return html.replace("__FOREST_CONFIG__", blob)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        value.strip().encode(), token.encode()
    )


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
