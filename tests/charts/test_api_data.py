"""The api-data subchart: one replica with its state on a PVC, env the service's own settings
accept, the dataset baked in or fetched."""

from __future__ import annotations

import pytest

from api_data.settings import Settings
from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import container, container_env, find, render_chart


@pytest.fixture(scope="module")
def deployment(platform_docs):
    return find(platform_docs, "Deployment", "fm-api-data")


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


class TestDeployment:
    def test_one_replica_replaced_not_rolled(self, deployment):
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}

    def test_runs_the_cli(self, deployment):
        assert container(deployment, "api-data")["command"] == ["forest-mlops", "api-data"]

    def test_settings_accept_the_rendered_env(self, deployment, platform_docs, monkeypatch):
        env = container_env(platform_docs, container(deployment, "api-data"))
        settings = settings_from(env, monkeypatch)
        assert str(settings.dataset) == "/app/data/covertype.csv.gz"
        assert settings.min_update_time == 300
        assert (settings.groups, settings.batches, settings.sample_fraction) == (10, 10, 0.1)
        assert (settings.host, settings.port) == ("0.0.0.0", 8000)
        assert settings.restart_token is None  # open by default, as the course API

    def test_state_file_is_on_the_pvc(self, deployment, platform_docs):
        env = container_env(platform_docs, container(deployment, "api-data"))
        mounts = {
            m["name"]: m["mountPath"] for m in container(deployment, "api-data")["volumeMounts"]
        }
        assert env["API_DATA_STATE_PATH"].startswith(mounts["state"] + "/")
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "fm-api-data"
        find(platform_docs, "PersistentVolumeClaim", "fm-api-data")

    def test_min_update_time_is_configurable(self, monkeypatch):
        docs = render_chart(WITHOUT_AIRFLOW | {"api-data": {"minUpdateTime": 45}})
        env = container_env(docs, container(find(docs, "Deployment", "fm-api-data"), "api-data"))
        assert settings_from(env, monkeypatch).min_update_time == 45

    def test_probes(self, deployment):
        main = container(deployment, "api-data")
        assert main["livenessProbe"]["httpGet"]["path"] == "/health"
        assert main["readinessProbe"]["httpGet"]["path"] == "/ready"

    def test_service_on_8000(self, platform_docs):
        (port,) = find(platform_docs, "Service", "fm-api-data")["spec"]["ports"]
        assert port["port"] == 8000


class TestOptions:
    def test_dataset_fetched_onto_the_pvc_by_an_init_container(self, monkeypatch):
        docs = render_chart(
            WITHOUT_AIRFLOW | {"api-data": {"dataset": {"fetch": {"enabled": True}}}}
        )
        deployment = find(docs, "Deployment", "fm-api-data")
        fetch = container(deployment, "fetch-dataset")
        path = fetch["command"][fetch["command"].index("--output") + 1]
        assert fetch["command"][:3] == ["forest-mlops", "data", "download"]
        env = container_env(docs, container(deployment, "api-data"))
        assert str(settings_from(env, monkeypatch).dataset) == path
        assert path.startswith("/var/lib/api-data/")

    def test_restart_token_from_a_generated_secret(self, monkeypatch):
        docs = render_chart(WITHOUT_AIRFLOW | {"api-data": {"restartToken": {"enabled": True}}})
        env = container_env(docs, container(find(docs, "Deployment", "fm-api-data"), "api-data"))
        token = settings_from(env, monkeypatch).restart_token
        assert token is not None and len(token.get_secret_value()) == 40

    def test_restart_token_from_an_existing_secret(self):
        docs = render_chart(
            WITHOUT_AIRFLOW
            | {"api-data": {"restartToken": {"enabled": True, "existingSecret": "corp-token"}}}
        )
        assert ("Secret", "fm-api-data") not in {(d["kind"], d["metadata"]["name"]) for d in docs}
        main = container(find(docs, "Deployment", "fm-api-data"), "api-data")
        (ref,) = [e for e in main["env"] if e["name"] == "API_DATA_RESTART_TOKEN"]
        assert ref["valueFrom"]["secretKeyRef"] == {"name": "corp-token", "key": "restart-token"}
