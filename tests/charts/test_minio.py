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

    def test_creates_both_buckets_then_each_user(self, job):
        command = container(job, "create-buckets")["command"]
        assert command[:2] == ["/bin/sh", "-ec"]
        script = command[2]
        assert "mc mb --ignore-existing minio/mlflow minio/airflow-logs" in script
        assert script.index("mc mb") < script.index("mc admin user add")

    def test_mc_script_sets_every_user_and_may_run_again(self, job, tmp_path):
        """The rendered script under sh, with the Job's mounted users and policies, against a
        stand-in for mc (a shell script recording its arguments; MinIO's mc image cannot be had
        here). The second run meets MinIO's answer to a policy already attached and goes on;
        any other failure of attach stops the Job."""
        import subprocess

        script = container(job, "create-buckets")["command"][2]
        for user in ("mlflow", "airflow-logs"):
            (tmp_path / "users" / user).mkdir(parents=True)
            (tmp_path / "users" / user / "access-key-id").write_text(f"{user}-key")
            (tmp_path / "users" / user / "secret-access-key").write_text(f"{user}-secret")
        (tmp_path / "bin").mkdir()
        fake = tmp_path / "bin" / "mc"
        fake.write_text(
            "#!/bin/sh\n"
            'echo "$*" >> "$CALLS"\n'
            'case "$*" in *"policy attach"*) [ -e "$ATTACHED" ] || exit 0\n'
            '  echo "$ATTACH_ERROR"; exit 1 ;; esac\n'
        )
        fake.chmod(0o755)
        script = script.replace("/users/", f"{tmp_path}/users/")
        script = script.replace("/policies/", f"{tmp_path}/policies/")
        env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls"),
               "ATTACHED": str(tmp_path / "attached"),
               "ATTACH_ERROR": "The specified policy change is already in effect."}  # fmt: skip

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(["sh", "-ec", script], env=env, capture_output=True, text=True)

        first = run()
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == ["user airflow-logs: set", "user mlflow: set"]
        calls = (tmp_path / "calls").read_text().splitlines()
        assert "--config-dir /tmp/mc admin user add minio mlflow-key mlflow-secret" in calls
        assert (
            f"--config-dir /tmp/mc admin policy create minio forest-mlops-mlflow "
            f"{tmp_path}/policies/mlflow.json"
        ) in calls
        assert (
            "--config-dir /tmp/mc admin policy attach minio forest-mlops-mlflow --user "
            "mlflow-key" in calls
        )
        (tmp_path / "attached").touch()
        assert run().returncode == 0
        env["ATTACH_ERROR"] = "mc: <ERROR> Unable to attach policy: access denied"
        refused = run()
        assert refused.returncode != 0 and "access denied" in refused.stderr

    def test_each_user_gets_its_own_bucket_only(self, platform_docs):
        import json

        policies = find(platform_docs, "ConfigMap", "fm-minio-policies")["data"]
        assert set(policies) == {"mlflow.json", "airflow-logs.json"}
        for user, bucket in (("mlflow", "mlflow"), ("airflow-logs", "airflow-logs")):
            statements = json.loads(policies[f"{user}.json"])["Statement"]
            resources = {r for s in statements for r in s["Resource"]}
            assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
            actions = {a for s in statements for a in s["Action"]}
            assert not {a for a in actions if a.startswith("admin:") or a.endswith("*")}
            assert "s3:CreateBucket" not in actions and "s3:DeleteBucket" not in actions
            secret = find(platform_docs, "Secret", f"fm-minio-{user}")
            assert set(secret["data"]) == {"access-key-id", "secret-access-key"}
            assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

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


def test_standin_bootstrap_sets_users_that_the_standin_enforces(tmp_path):
    """minio.bucketJob.client=standin (the offline e2e's): the rendered Job's command, with its
    mounted users and policies, run twice (every release revision runs it again) against the
    S3 stand-in's own server program (images/standins/s3, started as the image starts it, with
    the root keys). Then each user reaches its own bucket only, and no unknown key gets in."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import boto3
    import botocore.exceptions

    from tests.images.pods import Pod
    from tests.support.helm import render_chart

    docs = render_chart(
        {"airflow": {"enabled": False}, "minio": {"bucketJob": {"client": "standin"}}}
    )
    job = find(docs, "Job", "fm-minio-buckets-1")
    assert "initContainers" not in job["spec"]["template"]["spec"]
    # The Job's volumes as the kubelet would mount them (the container tests' pod harness).
    pod = Pod(docs, job, "none", "buckets", tmp_path / "pod")
    main = container(job, "create-buckets")
    standin = Path(__file__).resolve().parents[2] / "images" / "standins" / "s3"
    env = container_env(docs, main)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(standin / "s3_server.py"), "server", str(tmp_path / "data"),
         "--address", f"127.0.0.1:{port}"],
        env={**os.environ, **{k: env[k] for k in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")}},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"

    def s3(user: str, password: str) -> object:
        return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id=user, aws_secret_access_key=password)  # fmt: skip

    def refused(call: object) -> str:
        try:
            call()  # type: ignore[operator]
        except botocore.exceptions.ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "allowed"

    try:
        argv = [sys.executable, str(standin / "s3_bootstrap.py"), *main["command"][2:]]
        argv = [a.replace("/users", str(pod.volume_dirs["users"]))
                 .replace("/policies", str(pod.volume_dirs["policies"])) for a in argv]  # fmt: skip
        run_env = {**os.environ, **env, "S3_ENDPOINT_URL": endpoint}
        for expected in ("created", "exists"):
            proc = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            assert f"bucket mlflow: {expected}" in proc.stdout
            assert "user mlflow: set" in proc.stdout and "user airflow-logs: set" in proc.stdout
        root = s3(env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"])
        assert {b["Name"] for b in root.list_buckets()["Buckets"]} == {"mlflow", "airflow-logs"}
        keys = {
            user: {k: base64.b64decode(v).decode()
                   for k, v in find(docs, "Secret", f"fm-minio-{user}")["data"].items()}
            for user in ("mlflow", "airflow-logs")
        }  # fmt: skip
        mlflow = s3(keys["mlflow"]["access-key-id"], keys["mlflow"]["secret-access-key"])
        logs = s3(keys["airflow-logs"]["access-key-id"], keys["airflow-logs"]["secret-access-key"])
        mlflow.put_object(Bucket="mlflow", Key="1/a/artifacts/MLmodel", Body=b"x")
        assert mlflow.get_object(Bucket="mlflow", Key="1/a/artifacts/MLmodel")["Body"].read()
        assert mlflow.list_objects_v2(Bucket="mlflow")["KeyCount"] == 1
        logs.put_object(Bucket="airflow-logs", Key="dag_id=x/attempt=1.log", Body=b"log")
        assert refused(lambda: mlflow.put_object(Bucket="airflow-logs", Key="x", Body=b"")) == (
            "AccessDenied"
        )
        assert refused(lambda: logs.get_object(Bucket="mlflow", Key="1/a/artifacts/MLmodel")) == (
            "AccessDenied"
        )
        assert refused(lambda: mlflow.delete_bucket(Bucket="mlflow")) == "AccessDenied"
        # HeadBucket needs s3:ListBucket, as on AWS and MinIO (S3 answers a HEAD with no body).
        assert refused(lambda: mlflow.head_bucket(Bucket="mlflow")) == "allowed"
        assert refused(lambda: logs.head_bucket(Bucket="mlflow")) == "403"
        assert refused(mlflow.list_buckets) == "AccessDenied"
        assert refused(lambda: s3("nobody", "secret-of-nobody").list_buckets()) == (
            "InvalidAccessKeyId"
        )
        wrong = s3(keys["mlflow"]["access-key-id"], "not-the-secret-key")
        assert refused(lambda: wrong.list_objects_v2(Bucket="mlflow")) == "SignatureDoesNotMatch"
        # Only the root user may add users.
        import urllib.error
        import urllib.request

        login = base64.b64encode(b"mlflow-user:guess").decode()
        request = urllib.request.Request(
            f"{endpoint}/standin/users/intruder", data=b"{}", method="PUT",
            headers={"Authorization": f"Basic {login}"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_standin_keeps_its_users_across_a_restart_and_refuses_bad_users(tmp_path):
    """MinIO keeps its users on its volume: so does the stand-in (DIR/.standin-iam.json, 0600).
    A malformed user request is refused with the reason, and changes nothing."""
    import json
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    import boto3

    standin = Path(__file__).resolve().parents[2] / "images" / "standins" / "s3"
    root_env = {"MINIO_ROOT_USER": "root-user-1", "MINIO_ROOT_PASSWORD": "root-password-1"}
    login = base64.b64encode(b"root-user-1:root-password-1").decode()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::bkt/*"]}
        ],
    }

    def serve() -> tuple[subprocess.Popen[str], str]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, str(standin / "s3_server.py"), "server", str(tmp_path),
             "--address", f"127.0.0.1:{port}"], env={**os.environ, **root_env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/minio/health/ready", timeout=2)
                return server, endpoint
            except OSError:
                assert time.monotonic() < deadline, "the stand-in did not start"
                time.sleep(0.3)

    def put(endpoint: str, key: str, body: object) -> tuple[int, str]:
        request = urllib.request.Request(
            f"{endpoint}/standin/users/{key}", data=json.dumps(body).encode(), method="PUT",
            headers={"Authorization": f"Basic {login}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    server, endpoint = serve()
    try:
        assert put(endpoint, "reader-1", {"secretKey": "reader-secret", "policy": policy})[0] == 200
        for key, body, reason in [
            ("reader-2", {"secretKey": "short", "policy": policy}, "secretKey"),
            ("reader-2", {"secretKey": "reader-secret", "policy": "all"}, "policy"),
            ("reader-2", {"secretKey": "reader-secret",
                          "policy": {"Statement": [{"Effect": "Maybe"}]}}, "policy refused"),
            ("a=b", {"secretKey": "reader-secret", "policy": policy}, "access key"),
        ]:  # fmt: skip
            status, text = put(endpoint, key, body)
            assert status == 400 and reason in text, (key, status, text)
    finally:
        server.terminate()
        server.wait(timeout=30)
    saved = tmp_path / ".standin-iam.json"
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    assert set(json.loads(saved.read_text())) == {"reader-1"}
    server, endpoint = serve()
    try:
        root = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="root-user-1",
                            aws_secret_access_key="root-password-1")  # fmt: skip
        root.create_bucket(Bucket="bkt")
        root.put_object(Bucket="bkt", Key="k", Body=b"v")
        reader = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="reader-1",
                              aws_secret_access_key="reader-secret")  # fmt: skip
        assert reader.get_object(Bucket="bkt", Key="k")["Body"].read() == b"v"
    finally:
        server.terminate()
        server.wait(timeout=30)
