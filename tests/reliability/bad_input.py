"""What the schemathesis tests assert of every generated request, and how many ran.

An answer must never be a 5xx (the schemas promise no 5xx except the inference service's 503
before a model is loaded, which these tests avoid by serving a model), and every 4xx must say
what was wrong: a JSON body whose `detail` is a non-empty message (FastAPI's validation errors
are a list of {loc, msg, type}; both APIs' own errors are strings). And every answer must be
what the API's own OpenAPI schema says: a documented status code and content type, and a body
that validates against the response schema (schemathesis' conformance checks).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# A few hundred cases per API, the same ones on every run: CI must not find a new case by luck
# (a new case found locally becomes an explicit test instead).
FUZZ_SETTINGS = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

# The answer against the schema the service publishes. Only these: schemathesis' other default
# checks judge the request side (e.g. that a negative case is rejected), which check_answer
# states for itself.
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


def sweep(
    schema: Any, method: str, path: str, mode: Any, examples: int, counts: Counter[str]
) -> None:
    """`examples` generated requests to one operation, each checked by `check_answer`.

    schemathesis' pytest plugin (from_fixture) does not run under pytest 9, so the operation's
    hypothesis strategy is driven directly: the same generator, the same cases.
    """
    strategy = schema[path][method.upper()].as_strategy(generation_mode=mode)

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(timeout=30)
        check_answer(case, response, counts)

    run()


def describe(case: Any, response: Any) -> str:
    return (
        f"{case.method} {case.formatted_path} query={case.query!r} headers={case.headers!r} "
        f"body={str(case.body)[:500]!r} -> {response.status_code} {response.text[:2000]}"
    )


def check_answer(case: Any, response: Any, counts: Counter[str]) -> None:
    counts[f"{case.method} {case.path}"] += 1
    counts[f"status {response.status_code}"] += 1
    assert response.status_code < 500, describe(case, response)
    if 400 <= response.status_code < 500:
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(f"a 4xx without a JSON body: {describe(case, response)}") from None
        detail = body.get("detail") if isinstance(body, dict) else None
        assert detail, f"a 4xx without a message: {describe(case, response)}"
        if isinstance(detail, list):
            assert all(isinstance(e, dict) and e.get("msg") for e in detail), describe(
                case, response
            )
        else:
            assert isinstance(detail, str) and detail.strip(), describe(case, response)
    case.validate_response(response, checks=CONFORMANCE)
