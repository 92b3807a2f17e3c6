"""The data API's HTTP routes over the batch data and the group state.

`create_app(settings)` loads and validates the dataset (a bad file fails here, naming the
line), encodes the batches and restores the group state before the first request.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api_data.batches import BatchData, BatchLayout
from api_data.metrics import ApiMetrics, RequestCounter
from api_data.served import ServedRows
from api_data.settings import Settings
from api_data.state import AllDataCollected, GroupStates
from forest_mlops.dataset import load_dataset

logger = logging.getLogger(__name__)

SYNTHETIC_HEADER = "X-Data-Synthetic"
GroupNumber = Annotated[int, Query(description="the group asking, 1..API_DATA_GROUPS")]


class Error(BaseModel):
    """A 4xx answer of this API's own: what was wrong, in words."""

    detail: str


class Batch(BaseModel):
    """The body of GET /data (written as bytes; this model documents it)."""

    group_number: int
    batch_number: int
    data: list[list[int | str]]


# The answers each route can give besides 200, so the published schema is the whole contract
# (tests/reliability checks every generated answer against it).
BAD_GROUP: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "group outside 1..groups, or all data collected"}
}
NEEDS_TOKEN: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "the restart token is required and missing"}
}


def create_app(settings: Settings) -> FastAPI:
    dataset = load_dataset(settings.dataset)
    layout = BatchLayout.build(len(dataset), settings.batches, settings.sample_fraction)
    data = BatchData(dataset, layout, seed=settings.seed)
    states = GroupStates(
        groups=settings.groups,
        batches=settings.batches,
        window=settings.min_update_time,
        path=settings.state_path,
    )
    served = ServedRows(groups=settings.groups, records=data.distinct_records)
    synthetic = dataset.synthetic
    del dataset  # the encoded batches are all the routes need
    logger.info(
        "serving %s (%d rows%s) in %d batches of %d, %d rows per response, window %s s",
        settings.dataset, layout.n_rows, ", SYNTHETIC" if synthetic else "", layout.n_batches,
        layout.batch_size, layout.sample_size, settings.min_update_time,
    )  # fmt: skip

    metrics = ApiMetrics()
    metrics.window_seconds.set(settings.min_update_time)
    metrics.batches.set(layout.n_batches)

    def record_batch(group: int) -> None:
        state = states.get(group)
        batch = state.batch_number
        metrics.current_batch.labels(group=str(group)).set(-1 if batch is None else batch)
        started = metrics.batch_started
        if state.changed_at is not None:
            started.labels(group=str(group)).set(state.changed_at)
        else:
            # Not started, or restarted: no start time rather than a stale one (KeyError: the
            # group never had one).
            with contextlib.suppress(KeyError):
                started.remove(str(group))

    for group in range(1, settings.groups + 1):
        record_batch(group)

    app = FastAPI(
        title="Forest Cover Type batch data API",
        description="Serves the dataset batch by batch to each group, as the course API does.",
        version="1.0.0",
    )
    app.add_middleware(RequestCounter, metrics=metrics)
    app.state.settings = settings
    app.state.layout = layout
    app.state.states = states

    def check_group(group_number: int) -> None:
        if not 1 <= group_number <= settings.groups:
            raise HTTPException(
                status_code=400,
                detail=f"Invalid group_number {group_number}: groups are 1..{settings.groups}",
            )

    @app.get("/")
    async def root() -> dict[str, object]:
        return {
            "message": "Forest Cover Type batch data API: GET /data?group_number=N",
            "groups": settings.groups,
            "batches": layout.n_batches,
            "min_update_time": settings.min_update_time,
            "synthetic": synthetic,
        }

    @app.get("/data", responses={200: {"model": Batch}, **BAD_GROUP})
    async def read_data(group_number: GroupNumber) -> Response:
        check_group(group_number)
        try:
            batch = states.current_batch(group_number)
        except AllDataCollected as exc:
            metrics.all_collected.labels(group=str(group_number)).inc()
            raise HTTPException(status_code=400, detail=str(exc)) from None
        finally:
            record_batch(group_number)
        sample = data.sample(batch)
        metrics.rows_served.labels(group=str(group_number)).inc(sample.count)
        distinct = served.record(group_number, sample.content_ids)
        metrics.distinct_rows_served.labels(group=str(group_number)).set(distinct)
        body = b'{"group_number":%d,"batch_number":%d,"data":%b}' % (
            group_number,
            batch,
            sample.body,
        )
        return Response(
            content=body,
            media_type="application/json",
            headers={SYNTHETIC_HEADER: "true" if synthetic else "false"},
        )

    @app.get("/restart_data_generation", responses={**BAD_GROUP, **NEEDS_TOKEN})
    async def restart_data_generation(
        group_number: GroupNumber,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, object]:
        if settings.restart_token is not None:
            expected = f"Bearer {settings.restart_token.get_secret_value()}"
            if authorization is None or not secrets.compare_digest(
                authorization.encode(), expected.encode()
            ):
                raise HTTPException(
                    status_code=401,
                    detail="restarting a group needs Authorization: Bearer <token> "
                    "(the API_DATA_RESTART_TOKEN of this deployment)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        check_group(group_number)
        states.restart(group_number)
        record_batch(group_number)
        return {"group_number": group_number, "status": "restarted", "next_batch_number": 0}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> dict[str, object]:
        # create_app returns only once the dataset is loaded and encoded, so serving
        # requests at all means ready.
        return {"status": "ready", "rows": layout.n_rows, "synthetic": synthetic}

    @app.get("/metrics", responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/batches")
    async def batches() -> JSONResponse:
        snapshot = states.snapshot()
        return JSONResponse(
            {
                **layout.describe(),
                "dataset": str(settings.dataset),
                "synthetic": synthetic,
                "min_update_time": settings.min_update_time,
                # The distinct-rows figures below count from this moment (the process start).
                "rows_served_since": served.since,
                "groups": [
                    {
                        "group_number": group,
                        "batch_number": state.batch_number,
                        "changed_at": state.changed_at,
                        **states.status(group),
                        "rows_served_distinct": served.distinct(group),
                    }
                    for group, state in sorted(snapshot.items())
                ],
            }
        )

    return app
