"""A stand-in for inference's /predict in the load tests (no model, no MLflow): an ASGI app that
parses each body with the inference service's own request parser (inference_api.records) and
answers 200 for valid records, 422 otherwise, so a test sees whether Locust's payloads are what
the real service accepts. `FOREST_STUB_STATUS` forces another status (failure counting);
`FOREST_STUB_ARRIVALS` names a file that gets the epoch time of each /predict's arrival, one
per line (how Locust spreads its requests); `FOREST_STUB_DELAY` holds each /predict that many
seconds before its answer (requests in flight when Locust stops).

    uvicorn tests.load.predict_stub:app --port PORT
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from inference_api import records

FORCED = int(os.environ.get("FOREST_STUB_STATUS", "0"))
ARRIVALS = os.environ.get("FOREST_STUB_ARRIVALS")
DELAY_S = float(os.environ.get("FOREST_STUB_DELAY", "0"))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if ARRIVALS and scope["path"] == "/predict":
        with open(ARRIVALS, "a") as arrivals:
            arrivals.write(f"{time.time()}\n")
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/health":
        status = 200
    elif scope["path"] != "/predict" or scope["method"] != "POST":
        status = 404
    else:
        try:
            records.parse_json_body(body, max_batch=1)
            status = 200
        except records.RequestError:
            status = 422
        status = FORCED or status
        if DELAY_S:
            await asyncio.sleep(DELAY_S)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})
