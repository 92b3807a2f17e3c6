"""moto's S3 in front of MinIO's command line (written for this project).

`server DIR --address HOST:PORT [--console-address ...] [--certs-dir ...]` as the chart runs
MinIO: the address is honoured, --certs-dir is accepted and ignored. moto keeps everything in
memory; so that a restarted pod keeps its objects as MinIO does on its volume, every bucket and
object a request changed is written under DIR/.standin-s3/ (one file per object, its content
type beside it) and loaded back at start. MinIO's probe paths /minio/health/live and
/minio/health/ready answer 200.
There is no console: the console address answers every request with a page saying so, so that
the README's port-forward to the console port reaches the pod and tells the user what is there.

With MINIO_ROOT_USER and MINIO_ROOT_PASSWORD set (the chart always sets them) every request must
be signed by a known user and is checked against that user's IAM policy, as MinIO checks its
users' policies: moto's own enforcement, switched on once the saved objects are back. The root
user may do anything; other users are added by the chart's bootstrap Job (s3_users.py). Without
them any credentials are accepted, as before.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from moto import settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.s3.responses import ACTION_MAP
from moto.server import DomainDispatcherApplication, create_backend_app
from s3_users import ROOT_POLICY, Users, with_user_endpoint
from werkzeug.serving import run_simple
from werkzeug.test import Client

HEALTH_PATHS = ("/minio/health/live", "/minio/health/ready")


def with_health(app: Any) -> Any:
    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") in HEALTH_PATHS:
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    return wsgi


# moto picks the service from the request's credential scope: restored requests carry one.
RESTORE_HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=standin/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
}


class ObjectFiles:
    """The buckets and objects moto holds, mirrored as files: DIR/.standin-s3/BUCKET/QUOTED_KEY
    (the body) and QUOTED_KEY.type (its content type). Written after each request that changed
    them, read back into moto at start."""

    def __init__(self, root: Path, app: Any) -> None:
        self.root = root
        # Fails at start, not at the first write, when the volume is not writable.
        root.mkdir(parents=True, exist_ok=True)
        self.client = Client(app)
        self.lock = threading.Lock()

    def bucket_dir(self, bucket: str) -> Path:
        return self.root / quote(bucket, safe="")

    # After a write, the state is read from moto's S3 backend itself, not through a request: once
    # policies are enforced an unsigned request would be refused.
    @property
    def backend(self) -> Any:
        return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]

    def sync_bucket(self, bucket: str) -> None:
        exists = bucket in self.backend.buckets
        with self.lock:
            if exists:
                self.bucket_dir(bucket).mkdir(parents=True, exist_ok=True)
            else:
                shutil.rmtree(self.bucket_dir(bucket), ignore_errors=True)

    def sync_object(self, bucket: str, key: str) -> None:
        found = self.backend.buckets.get(bucket)
        stored = found.keys.get(key) if found is not None else None
        path = self.bucket_dir(bucket) / quote(key, safe="")
        with self.lock:
            if stored is None:
                path.unlink(missing_ok=True)
                Path(f"{path}.type").unlink(missing_ok=True)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            for target, data in (
                (Path(f"{path}.type"), (stored.metadata.get("content-type") or "").encode()),
                (path, stored.value),
            ):
                tmp = target.with_name(target.name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)

    def restore(self) -> int:
        count = 0
        for bucket_dir in sorted(p for p in self.root.glob("*") if p.is_dir()):
            bucket = unquote(bucket_dir.name)
            self.client.put(f"/{bucket}", headers=RESTORE_HEADERS)
            for path in sorted(bucket_dir.iterdir()):
                if path.name.endswith((".type", ".tmp")):
                    continue
                kind = Path(f"{path}.type")
                headers = dict(RESTORE_HEADERS)
                if kind.exists() and kind.read_text():
                    headers["Content-Type"] = kind.read_text()
                key = unquote(path.name)
                self.client.put(f"/{bucket}/{quote(key)}", data=path.read_bytes(), headers=headers)
                count += 1
        return count


def persisted(app: Any, files: ObjectFiles) -> Any:
    """After a request that may have changed a bucket or an object, mirror it to files."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("PUT", "POST", "DELETE"):
            return app(environ, start_response)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        bucket, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
        body = b""
        if method == "POST" and not key and "delete" in query:
            # DeleteObjects names its keys in the body: read it, then hand moto a copy.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        answer = list(app(environ, start_response))
        if not bucket:
            return answer
        if not key and method in ("PUT", "DELETE") and not query:
            files.sync_bucket(bucket)
        elif not key and "delete" in query:
            for deleted in re.findall(rb"<Key>(.*?)</Key>", body):
                files.sync_object(bucket, deleted.decode())
        elif key and ("uploadId" not in query or method == "POST"):
            # Not a part upload: a put, a copy, a completed multipart upload or a delete.
            files.sync_object(bucket, key)
        return answer

    return wsgi


NO_CONSOLE = (
    b"forest-mlops S3 stand-in (moto): MinIO's console is not part of this stand-in.\n"
    b"The S3 API answers on port 9000 of the same Service.\n"
)


def no_console(environ: dict[str, Any], start_response: Any) -> Any:
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(NO_CONSOLE)))],
    )
    return [NO_CONSOLE]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="s3-standin")
    parser.add_argument("command", choices=["server"])
    parser.add_argument("dirs", nargs="*")
    parser.add_argument("--address", default=":9000")
    parser.add_argument("--console-address", default=None)
    parser.add_argument("--certs-dir", default=None)
    args = parser.parse_args(argv)
    host, _, port = args.address.rpartition(":")
    moto = DomainDispatcherApplication(create_backend_app)
    app: Any = moto
    if args.dirs:
        files = ObjectFiles(Path(args.dirs[0]) / ".standin-s3", moto)
        restored = files.restore()
        sys.stderr.write(f"s3 stand-in: {restored} object(s) restored from {files.root}\n")
        app = persisted(moto, files)
    root_user, root_password = (
        os.environ.get("MINIO_ROOT_USER"),
        os.environ.get("MINIO_ROOT_PASSWORD"),
    )
    if root_user and root_password:
        users = Users(Path(args.dirs[0] if args.dirs else "/tmp") / ".standin-iam.json")
        users.put(root_user, root_password, ROOT_POLICY)
        sys.stderr.write(f"s3 stand-in: root user and {users.load()} user(s) from {users.path}\n")
        # AWS and MinIO authorize HeadBucket as s3:ListBucket; moto asks for "s3:HeadBucket",
        # an action MinIO's policy parser rejects, so no policy of the chart could grant it.
        ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"
        # Read on every request: from now on each one is signed by a user its policy allows.
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        app = with_user_endpoint(app, users, root_user, root_password)
    else:
        sys.stderr.write("s3 stand-in: no MINIO_ROOT_USER/MINIO_ROOT_PASSWORD: any key accepted\n")
    app = with_health(app)
    sys.stderr.write(f"s3 stand-in (moto) on {host or '0.0.0.0'}:{port}\n")
    if args.console_address:
        console_host, _, console_port = args.console_address.rpartition(":")
        threading.Thread(
            target=run_simple,
            args=(console_host or "0.0.0.0", int(console_port), no_console),
            kwargs={"threaded": True, "use_reloader": False},
            daemon=True,
        ).start()
    run_simple(host or "0.0.0.0", int(port), app, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
