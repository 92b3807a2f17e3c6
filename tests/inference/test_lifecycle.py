"""The model lifecycle over HTTP: hot swap under load, rejected versions, no-model start and
registry outages, with real MLflow servers and real `forest-mlops inference` processes."""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.pipeline import Pipeline

from forest_mlops import mlflow_server
from tests.conftest import S3_TEST_KEY, MlflowServer, start_mlflow_server
from tests.inference import models
from tests.inference.conftest import InferenceService
from tests.inference.test_api import EXAMPLE
from tests.support.processes import ServerProcess, free_port

pytestmark = pytest.mark.slow


class Hammer:
    """Threads sending single-record /predict requests until stopped, recording every outcome."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.versions: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/predict", json=EXAMPLE)
                    outcome = (
                        response.json()["model_version"]
                        if response.status_code == 200
                        else f"HTTP {response.status_code}: {response.text[:200]}"
                    )
                    ok = response.status_code == 200
                except httpx.HTTPError as exc:
                    outcome, ok = f"{type(exc).__name__}: {exc}", False
                with self._lock:
                    (self.versions if ok else self.failures).append(outcome)

    def count(self) -> int:
        with self._lock:
            return len(self.versions) + len(self.failures)


@pytest.fixture(scope="module")
def swap_service(
    mlflow_tracking_server: MlflowServer,
    start_inference: Callable[..., InferenceService],
    pipeline_v1: Pipeline,
) -> InferenceService:
    name = f"forest-swap-{uuid.uuid4().hex[:8]}"
    models.register(mlflow_tracking_server.url, name, pipeline_v1)
    service = start_inference(mlflow_tracking_server, model_name=name, poll_interval=1)
    service.wait_for(lambda info: info["ready"], timeout=90)
    return service


def test_hot_swap_under_load_fails_no_request(
    swap_service: InferenceService, mlflow_tracking_server: MlflowServer, pipeline_v2: Pipeline
) -> None:
    before = swap_service.model_info()["model"]["version"]
    with Hammer(swap_service.url) as hammer:
        while hammer.count() < 50:  # the load is on before the new version appears
            time.sleep(0.05)
        new = models.register(mlflow_tracking_server.url, swap_service.model_name, pipeline_v2)
        swap_service.wait_for(lambda info: info["model"]["version"] == new, timeout=90)
        swapped_at = hammer.count()
        while hammer.count() < swapped_at + 50:  # and stays on after the swap
            time.sleep(0.05)
    assert hammer.failures == []
    seen = Counter(hammer.versions)
    assert seen[before] >= 50 and seen[new] >= 50, seen
    # Once a request saw the new version, no later one is answered by the old.
    first_new = hammer.versions.index(new)
    assert before not in hammer.versions[first_new + 20 :]
    assert swap_service.model_info()["registry"]["last_error"] is None


def test_broken_versions_are_rejected_and_the_old_model_keeps_serving(
    swap_service: InferenceService,
    mlflow_tracking_server: MlflowServer,
    training_frame: object,
    pipeline_v1: Pipeline,
    tmp_path: Path,
) -> None:
    tracking = mlflow_tracking_server.url
    name = swap_service.model_name
    serving = swap_service.model_info()["model"]["version"]

    unreadable = models.register_unreadable(tracking, name, pipeline_v1, tmp_path)
    info = swap_service.wait_for(
        lambda i: unreadable in i["registry"]["rejected_versions"], timeout=90
    )
    assert info["model"]["version"] == serving
    reason = info["registry"]["rejected_versions"][unreadable]
    assert reason.startswith(f"version {unreadable} cannot be loaded as an sklearn model: ")
    assert info["registry"]["last_check_status"] == "rejected"
    assert info["registry"]["last_error"] == reason

    incompatible = models.register(
        tracking,
        name,
        models.incompatible_pipeline(training_frame, seed=3),  # type: ignore[arg-type]
    )
    info = swap_service.wait_for(
        lambda i: incompatible in i["registry"]["rejected_versions"], timeout=90
    )
    assert info["model"]["version"] == serving
    assert info["registry"]["rejected_versions"][incompatible].startswith(
        f"version {incompatible} failed to predict the smoke record: ValueError: "
    )
    # A forced reload reports the rejection; requests are still answered by the old version.
    with swap_service.client() as client:
        reload = client.post("/reload")
        answer = client.post("/predict", json=EXAMPLE)
        metrics = client.get("/metrics").text
    assert reload.status_code == 409
    assert reload.json()["status"] == "rejected"
    assert reload.json()["serving_version"] == serving
    assert answer.status_code == 200 and answer.json()["model_version"] == serving
    rejected = re.search(
        r'^forest_inference_registry_checks_total\{outcome="rejected"\} (\S+)$', metrics, re.M
    )
    assert rejected and float(rejected.group(1)) >= 2


def checked_at(info: dict[str, Any]) -> dt.datetime:
    """When the service's last successful registry check ended (the epoch before the first)."""
    at = info["registry"]["last_success_at"]
    return dt.datetime.fromisoformat(at) if at else dt.datetime.min.replace(tzinfo=dt.UTC)


def test_a_service_without_champion_is_not_ready_until_one_appears(
    mlflow_tracking_server: MlflowServer,
    start_inference: Callable[..., InferenceService],
    pipeline_v1: Pipeline,
) -> None:
    service = start_inference(mlflow_tracking_server, poll_interval=1)
    name = service.model_name
    info = service.wait_for(lambda i: i["registry"]["last_check_status"] is not None, 60)
    assert info["ready"] is False and info["model"] is None
    with service.client() as client:
        ready = client.get("/ready")
        predict = client.post("/predict", json=EXAMPLE)
        health = client.get("/health")
        # The chart's readiness probe: a registry with no champion yet is a servable state
        # (a fresh install must reach Ready for `helm install --wait`), /predict still says 503.
        probe = client.get("/ready", params={"no_champion_ok": "true"})
        metrics = client.get("/metrics").text
    reason = f"no model is loaded: no version of '{name}' has the alias 'champion' yet"
    assert probe.status_code == 200 and probe.json() == {"ready": True, "model_version": None}
    assert ready.status_code == 503
    assert ready.json() == {"ready": False, "detail": reason}
    assert predict.status_code == 503
    assert predict.json() == {"detail": reason}
    assert health.status_code == 200  # alive, only not ready
    # What the "no champion" alert reads, and no score for a model that is not there.
    assert _gauge(metrics, "forest_inference_ready") == 0.0
    assert _gauge(metrics, "forest_inference_model_version") == 0.0
    assert math.isnan(_gauge(metrics, "forest_inference_model_test_accuracy"))

    # A version without the alias changes nothing; the alias does.
    models.register(mlflow_tracking_server.url, name, pipeline_v1, alias=None)
    registered = dt.datetime.now(dt.UTC)
    # Wait for a registry check that started after the version existed: one that ended after
    # the registration (it may have started before), then the next one.
    info = service.wait_for(lambda i: checked_at(i) > registered, timeout=30)
    previous = checked_at(info)
    info = service.wait_for(lambda i: checked_at(i) > previous, timeout=30)
    assert info["ready"] is False and info["registry"]["last_check_status"] == "no_model", info
    from mlflow import MlflowClient

    MlflowClient(mlflow_tracking_server.url).set_registered_model_alias(name, "champion", "1")
    service.wait_for(lambda i: i["ready"], timeout=90)
    with service.client() as client:
        assert client.get("/ready").json() == {"ready": True, "model_version": "1"}
        assert (
            client.get("/ready", params={"no_champion_ok": "true"}).json()["model_version"] == "1"
        )
        answer = client.post("/predict", json=EXAMPLE)
        metrics = client.get("/metrics").text
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    assert _gauge(metrics, "forest_inference_ready") == 1.0
    assert _gauge(metrics, "forest_inference_model_version") == 1.0
    # Version 1's run logged no test_accuracy: NaN, not a made-up score.
    assert math.isnan(_gauge(metrics, "forest_inference_model_test_accuracy"))


def test_the_tracking_uri_flag_wins_over_stray_mlflow_environment(
    mlflow_tracking_server: MlflowServer,
    start_inference: Callable[..., InferenceService],
    pipeline_v1: Pipeline,
) -> None:
    """MLflow's `models:/` download resolves the version through the process-wide registry URI
    (MLFLOW_REGISTRY_URI, else MLFLOW_TRACKING_URI), not the one it is given: a service started
    with --tracking-uri but a stray MLflow variable found the alias and then failed every
    download with "Registered Model ... not found" (a clean-clone make test, where an earlier
    test had left both variables pointing at its stopped server)."""
    name = f"forest-stray-{uuid.uuid4().hex[:8]}"
    models.register(mlflow_tracking_server.url, name, pipeline_v1)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    service = start_inference(
        mlflow_tracking_server,
        model_name=name,
        poll_interval=1,
        MLFLOW_TRACKING_URI=nowhere,
        MLFLOW_REGISTRY_URI=nowhere,
    )
    info = service.wait_for(lambda i: i["registry"]["last_check_status"] is not None, 60)
    assert info["ready"] is True, info
    with service.client() as client:
        answer = client.post("/predict", json=EXAMPLE)
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"


def _gauge(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics:\n{text[:3000]}"
    return float(match.group(1))


@pytest.fixture
def own_mlflow_server(
    make_mysql_database: Callable[[str], str], s3_server: str, tmp_path: Path
) -> Iterator[MlflowServer]:
    """An MLflow server this test may stop and restart without disturbing the others."""
    server = start_mlflow_server(
        backend_url=make_mysql_database("fmoutage"),
        s3_endpoint=s3_server,
        bucket=f"outage-{uuid.uuid4().hex[:8]}",
        log_path=tmp_path / "mlflow.log",
    )
    yield server
    server.process.stop()


def _restart(server: MlflowServer, s3_server: str, log_path: Path) -> None:
    """Start the same server command again: same port, same backend store and bucket."""
    env = mlflow_server.server_env(
        s3_endpoint_url=s3_server, access_key_id=S3_TEST_KEY, secret_access_key=S3_TEST_KEY
    )
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    server.process = ServerProcess(server.process.argv, log_path=log_path, env=env)
    server.process.wait_http(f"{server.url}/health", timeout=120)


def test_registry_outage_keeps_the_model_serving_and_shows_staleness(
    own_mlflow_server: MlflowServer,
    start_inference: Callable[..., InferenceService],
    pipeline_v1: Pipeline,
    s3_server: str,
    tmp_path: Path,
) -> None:
    name = f"forest-outage-{uuid.uuid4().hex[:8]}"
    models.register(own_mlflow_server.url, name, pipeline_v1)
    service = start_inference(own_mlflow_server, model_name=name, poll_interval=1)
    service.wait_for(lambda i: i["ready"], timeout=90)

    own_mlflow_server.process.kill()  # a crash: no goodbye to open connections
    info = service.wait_for(
        lambda i: (
            (i["registry"]["staleness_seconds"] or 0) > 3
            and i["registry"]["last_check_status"] == "unavailable"
        ),
        timeout=60,
    )
    assert info["ready"] is True and info["model"]["version"] == "1"
    assert info["registry"]["last_error"].startswith("registry unreachable: ")
    with service.client() as client:
        answers = [client.post("/predict", json=EXAMPLE) for _ in range(20)]
        metrics = client.get("/metrics").text
        ready = client.get("/ready")
    assert [a.status_code for a in answers] == [200] * 20
    assert {a.json()["model_version"] for a in answers} == {"1"}
    assert ready.status_code == 200  # stale but serving: still ready
    staleness = re.search(r"^forest_inference_registry_staleness_seconds (\S+)$", metrics, re.M)
    assert staleness and float(staleness.group(1)) > 3
    unavailable = re.search(
        r'^forest_inference_registry_checks_total\{outcome="unavailable"\} (\S+)$', metrics, re.M
    )
    assert unavailable and float(unavailable.group(1)) >= 1

    _restart(own_mlflow_server, s3_server, tmp_path / "mlflow-restarted.log")
    info = service.wait_for(
        lambda i: (
            i["registry"]["last_check_status"] == "unchanged"
            and i["registry"]["staleness_seconds"] < 3
        ),
        timeout=60,
    )
    assert info["model"]["version"] == "1"
