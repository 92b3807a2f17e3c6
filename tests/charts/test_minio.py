"""The minio subchart: pinned image, generated root credentials, console, the bucket Job."""

from __future__ import annotations

import base64
import re

import pytest

from tests.charts.conftest import WITHOUT_AIRFLOW
from tests.support.helm import container, container_env, find, render_manifest


@pytest.fixture(scope="module")
def statefulset(platform_docs):
    return find(platform_docs, "StatefulSet", "fm-minio")


@pytest.fixture(scope="module")
def job(platform_docs):
    return find(platform_docs, "Job", "fm-minio-buckets-1")


class TestServer:
    def test_image_pinned_to_a_release(self, statefulset):
        image = container(statefulset, "minio")["image"]
        assert re.fullmatch(r"quay\.io/minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", image)

    def test_serves_s3_and_the_console(self, statefulset, platform_docs):
        main = container(statefulset, "minio")
        assert main["args"][:2] == ["server", "/data"]
        assert main["args"][main["args"].index("--console-address") + 1] == ":9001"
        ports = {
            p["name"]: p["port"]
            for p in find(platform_docs, "Service", "fm-minio")["spec"]["ports"]
        }
        assert ports == {"s3": 9000, "console": 9001}

    def test_health_probes(self, statefulset):
        main = container(statefulset, "minio")
        assert main["livenessProbe"]["httpGet"]["path"] == "/minio/health/live"
        assert main["readinessProbe"]["httpGet"]["path"] == "/minio/health/ready"

    def test_root_credentials_generated_never_the_well_known_ones(self, platform_docs, statefulset):
        data = find(platform_docs, "Secret", "fm-minio")["data"]
        assert set(data) == {"root-user", "root-password"}
        env = container_env(platform_docs, container(statefulset, "minio"))
        assert env["MINIO_ROOT_USER"] == base64.b64decode(data["root-user"]).decode()
        assert len(env["MINIO_ROOT_PASSWORD"]) == 40
        assert "minioadmin" not in render_manifest(WITHOUT_AIRFLOW).lower()


class TestBucketJob:
    def test_a_plain_job_one_per_release_revision(self, job):
        # Not a hook: Helm runs post-install hooks only after every resource is Ready, which
        # deadlocked `helm install --wait` (test_install_wait.py has the whole-chart check).
        annotations = job["metadata"].get("annotations", {})
        assert not any(key.startswith("helm.sh/hook") for key in annotations)
        assert job["metadata"]["name"].endswith("-buckets-1")  # helm template's revision

    def test_creates_both_buckets_idempotently(self, job):
        command = container(job, "create-buckets")["command"]
        assert command[command.index("mb") :] == [
            "mb",
            "--ignore-existing",
            "minio/mlflow",
            "minio/airflow-logs",
        ]

    def test_waits_for_minio_first(self, job):
        assert container(job, "wait-for-minio")["command"][-2:] == ["ready", "minio"]

    def test_credentials_reach_mc_through_the_environment(self, job, platform_docs):
        env = container_env(platform_docs, container(job, "create-buckets"))
        user, password = env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"]
        assert env["MC_HOST_minio"] == f"http://{user}:{password}@fm-minio:9000"
        assert not any(password in arg for arg in container(job, "create-buckets")["command"])

    def test_is_allowed_through_the_network_policy(self, job):
        assert job["spec"]["template"]["metadata"]["labels"]["forest-mlops/s3-client"] == "true"

    def test_bounded_retries_and_cleanup(self, job):
        assert job["spec"]["backoffLimit"] > 0
        assert job["spec"]["activeDeadlineSeconds"] > 0
        assert job["spec"]["ttlSecondsAfterFinished"] == 600


def test_boto3_bucket_client_creates_the_buckets_on_a_real_s3_server(tmp_path):
    """minio.bucketJob.client=boto3 (for images without mc, as the offline e2e uses): the
    rendered command, run as the pod would run it, against moto's S3 server; twice, since
    every release revision runs it again."""
    import os
    import subprocess
    import sys

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.helm import render_chart

    docs = render_chart(
        {"airflow": {"enabled": False}, "minio": {"bucketJob": {"client": "boto3"}}}
    )
    job = find(docs, "Job", "fm-minio-buckets-1")
    assert "initContainers" not in job["spec"]["template"]["spec"]
    main = container(job, "create-buckets")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {**os.environ, "S3_ENDPOINT_URL": endpoint, "HOME": str(tmp_path)}
        env.update(MINIO_ROOT_USER="u", MINIO_ROOT_PASSWORD="p")
        argv = [sys.executable, *main["command"][1:]]
        for expected in ("created", "exists"):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            assert f"bucket mlflow: {expected}" in proc.stdout
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="u",
            aws_secret_access_key="p",
            region_name="us-east-1",
        )
        assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {"mlflow", "airflow-logs"}
    finally:
        server.stop()
