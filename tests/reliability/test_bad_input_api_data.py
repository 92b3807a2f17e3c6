"""schemathesis against the data API's OpenAPI schema, over HTTP to a real
`forest-mlops api-data` process: schema-valid and schema-breaking requests to every route.

The hand-written cases (group 0, 13, -1, 99999999999 → 400; "abc", "1.5", "" → 422; the
restart token) are in tests/api_data/test_contract.py; this is the generated sweep.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.core.failures import FailureGroup

from forest_mlops import synthetic
from tests.reliability.bad_input import MODES, check_answer, sweep
from tests.support.processes import VENV_BIN, ServerProcess, free_port

pytestmark = pytest.mark.slow

COUNTS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def api_data_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("fuzz-api-data")
    dataset = synthetic.write_csv(workdir / "fuzz_synthetic.csv", n_rows=1000, seed=3)
    port = free_port()
    argv = [
        str(VENV_BIN / "forest-mlops"), "api-data",
        "--dataset", str(dataset), "--min-update-time", "0.2",
        "--state", str(workdir / "state.json"),
        "--port", str(port), "--host", "127.0.0.1", "--seed", "1",
    ]  # fmt: skip
    process = ServerProcess(argv, log_path=workdir / "api-data.log")
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/health", timeout=90)
    yield url
    process.stop()
    log = process.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]


@pytest.fixture(scope="module")
def api_data_schema(api_data_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{api_data_url}/openapi.json")


# (method, path, examples per generation mode). Routes without inputs have no schema-breaking
# request to generate: they get positive cases only.
WITH_INPUTS = [("GET", "/data", 80), ("GET", "/restart_data_generation", 80)]
WITHOUT_INPUTS = [("GET", path, 5) for path in ("/", "/health", "/ready", "/metrics", "/batches")]
CASES = [
    pytest.param(method, path, examples, mode, id=f"{method} {path} {mode}")
    for method, path, examples in WITH_INPUTS + WITHOUT_INPUTS
    for mode in MODES
    if (method, path, examples) in WITH_INPUTS or mode == MODES[0]
]


@pytest.mark.parametrize(("method", "path", "examples", "mode"), CASES)
def test_generated_requests_get_no_5xx_and_clear_4xx(
    api_data_schema: Any, method: str, path: str, examples: int, mode: Any
) -> None:
    sweep(api_data_schema, method, path, mode, examples, COUNTS)


def test_a_few_hundred_cases_ran() -> None:
    if not COUNTS:
        pytest.skip("the generated sweep did not run in this session")
    total = sum(v for k, v in COUNTS.items() if not k.startswith("status"))
    print(f"data API sweep: {total} requests, {dict(sorted(COUNTS.items()))}")
    assert total >= 200, COUNTS
    assert COUNTS["GET /data"] >= 80 and COUNTS["GET /restart_data_generation"] >= 80, COUNTS
    assert COUNTS["status 400"] + COUNTS["status 422"] > 0, COUNTS  # bad input was sent
    assert COUNTS["status 200"] > 0, COUNTS


def test_the_server_still_answers_after_the_sweep(api_data_url: str) -> None:
    batches = httpx.get(f"{api_data_url}/batches", timeout=10).json()
    assert len(batches["groups"]) == 10


def test_an_answer_outside_the_schema_is_caught(api_data_schema: Any, api_data_url: str) -> None:
    """The sweep's schema check is not a formality: an answer the schema does not allow fails."""
    case = api_data_schema["/data"]["GET"].Case(query={"group_number": 1})
    request = httpx.Request("GET", f"{api_data_url}/data?group_number=1")

    def failures(status: int, body: object) -> set[str]:
        response = httpx.Response(status, json=body, request=request)
        response.elapsed = dt.timedelta(0)  # as if it had come over the wire
        with pytest.raises(FailureGroup) as caught:
            check_answer(case, response, Counter())
        return {type(failure).__name__ for failure in caught.value.exceptions}

    assert failures(200, {"group_number": "one", "data": []}) == {"JsonSchemaError"}
    assert failures(409, {"detail": "conflict"}) == {"UndefinedStatusCode"}
