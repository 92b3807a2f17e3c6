"""The S3 stand-in keeps its buckets and objects across a restart, as MinIO does on its volume
(a `helm upgrade` after `skaffold run` rolls every pod: MLflow's models must survive it)."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from typing import Any

from tests.images.conftest import S3_IMAGE
from tests.images.pods import docker, new_workdir


def s3_client(ip: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://{ip}:9000",
        region_name="us-east-1",
        aws_access_key_id="any",
        aws_secret_access_key="any",
    )


def wait_for(ip: str) -> Any:
    s3 = s3_client(ip)
    deadline = time.monotonic() + 60
    while True:
        try:
            s3.list_buckets()
            return s3
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_objects_and_buckets_survive_a_restart(engine: str) -> None:
    image = ":".join(S3_IMAGE)
    volume = new_workdir("forest-mlops-s3-")
    volume.chmod(0o777)  # local-path's PVC directories are world-writable too
    name = f"fm-s3-restart-{uuid.uuid4().hex[:6]}"
    docker("run", "-d", "--name", name, "--user", "1000:0", "--read-only", "--tmpfs", "/tmp",
           "-v", f"{volume}:/data", image, "server", "/data", "--address", ":9000")  # fmt: skip
    try:
        ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    name).stdout.strip()  # fmt: skip
        s3 = wait_for(ip)
        s3.create_bucket(Bucket="mlflow")
        s3.create_bucket(Bucket="dropped")
        s3.put_object(
            Bucket="mlflow", Key="1/r/artifacts/MLmodel", Body=b"x", ContentType="text/yaml"
        )
        big = os.urandom(12 * 2**20)  # over boto3's 8 MiB threshold: a multipart upload
        s3.put_object(Bucket="mlflow", Key="gone", Body=b"y")
        s3.delete_object(Bucket="mlflow", Key="gone")
        s3.delete_bucket(Bucket="dropped")
        path = volume / "big.bin"
        path.write_bytes(big)
        s3.upload_file(str(path), "mlflow", "1/r/artifacts/model.onnx")

        docker("restart", name)
        s3 = wait_for(ip)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["mlflow"]
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="mlflow")["Contents"])
        assert keys == ["1/r/artifacts/MLmodel", "1/r/artifacts/model.onnx"]
        model = s3.get_object(Bucket="mlflow", Key="1/r/artifacts/MLmodel")
        assert model["ContentType"] == "text/yaml"
        body = s3.get_object(Bucket="mlflow", Key="1/r/artifacts/model.onnx")["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
        assert "2 object(s) restored" in docker("logs", name).stderr
    finally:
        docker("rm", "--force", name, check=False)
