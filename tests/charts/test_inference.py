"""The inference subchart: env its own settings accept, readiness = model loaded, the prediction
log on MySQL, the reload token, the optional HPA."""

from __future__ import annotations

import base64

import pytest

from inference_api.settings import Settings
from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import container, container_env, find, render_chart


@pytest.fixture(scope="module")
def deployment(platform_docs):
    return find(platform_docs, "Deployment", "fm-inference")


@pytest.fixture
def settings(deployment, platform_docs, monkeypatch) -> Settings:
    for name, value in container_env(platform_docs, container(deployment, "inference")).items():
        monkeypatch.setenv(name, value)
    return Settings()


class TestSettings:
    def test_registry_and_model_from_the_platform_configmap(self, settings):
        assert settings.tracking_uri == "http://fm-mlflow:5000"
        assert (settings.model_name, settings.model_alias) == ("forest-cover-type", "champion")
        assert (settings.host, settings.port) == ("0.0.0.0", 8001)

    def test_prediction_log_as_the_inference_user(self, settings, platform_docs):
        password = base64.b64decode(
            find(platform_docs, "Secret", "fm-mysql")["data"]["inference-password"]
        ).decode()
        assert settings.log_database_url is not None
        assert settings.log_database_url.get_secret_value() == (
            f"mysql+pymysql://inference:{password}@fm-mysql:3306/train_data"
        )

    def test_reload_token_generated(self, settings, platform_docs):
        assert settings.reload_token is not None
        assert len(settings.reload_token.get_secret_value()) == 40

    def test_models_come_through_the_mlflow_server(self, deployment, platform_docs):
        env = container_env(platform_docs, container(deployment, "inference"))
        assert env["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] == "false"


class TestDeployment:
    def test_runs_the_cli(self, deployment):
        assert container(deployment, "inference")["command"] == ["forest-mlops", "inference"]

    def test_ready_once_serving_what_the_registry_holds(self, deployment):
        main = container(deployment, "inference")
        assert main["readinessProbe"]["httpGet"] == {
            "path": "/ready?no_champion_ok=true",
            "port": "http",
        }
        assert main["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}

    def test_service_on_8001(self, platform_docs):
        (port,) = find(platform_docs, "Service", "fm-inference")["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (8001, "http")

    def test_may_reach_mysql_for_the_log(self, deployment):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["forest-mlops/db-client"] == "true"
        assert "forest-mlops/s3-client" not in labels

    def test_without_the_log_no_database_access(self):
        docs = render_chart(WITHOUT_AIRFLOW | {"inference": {"predictionLog": {"enabled": False}}})
        deployment = find(docs, "Deployment", "fm-inference")
        assert "forest-mlops/db-client" not in deployment["spec"]["template"]["metadata"]["labels"]
        env = container_env(docs, container(deployment, "inference"))
        assert "INFERENCE_LOG_DATABASE_URL" not in env

    def test_without_a_token_no_secret(self):
        docs = render_chart(WITHOUT_AIRFLOW | {"inference": {"reloadToken": {"enabled": False}}})
        assert ("Secret", "fm-inference") not in {(d["kind"], d["metadata"]["name"]) for d in docs}


class TestAutoscaling:
    def test_hpa_on_cpu_replaces_the_replica_count(self):
        docs = render_chart(
            WITHOUT_AIRFLOW | {"inference": {"autoscaling": {"enabled": True, "maxReplicas": 5}}}
        )
        hpa = find(docs, "HorizontalPodAutoscaler", "fm-inference")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "fm-inference",
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 5)
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
        assert "replicas" not in find(docs, "Deployment", "fm-inference")["spec"]

    def test_no_hpa_by_default(self, platform_docs, deployment):
        assert "HorizontalPodAutoscaler" not in {d["kind"] for d in platform_docs}
        assert deployment["spec"]["replicas"] == 1
