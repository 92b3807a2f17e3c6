"""The bucket and user bootstrap of the chart's Job, for the S3 stand-in (written for this project;
with MinIO the Job runs `mc mb` and `mc admin user add` instead).

`python s3_bootstrap.py --users DIR --policies DIR BUCKET...` with S3_ENDPOINT_URL,
MINIO_ROOT_USER and MINIO_ROOT_PASSWORD: waits for the server, creates the missing buckets, then
sets every user of DIR (one folder per user, a mounted Secret with access-key-id and
secret-access-key) with the policy POLICIES/<user>.json through the stand-in's user endpoint
(s3_users.py). Every step is idempotent: each release revision runs the Job again.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3


def say(line: str) -> None:
    """A line of the Job's log, written at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_buckets(endpoint: str, user: str, password: str, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        # A new client (and connection) each try: a kept-alive connection opened before the
        # Service's routing was in place may never reach the server.
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=user,
            aws_secret_access_key=password,
        )
        try:
            return s3, {b["Name"] for b in s3.list_buckets()["Buckets"]}
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            say(f"waiting for S3: {exc}")
            time.sleep(3)


def put_user(endpoint: str, login: str, name: str, folder: Path, policy: dict[str, Any]) -> None:
    access_key = (folder / "access-key-id").read_text().strip()
    body = {"secretKey": (folder / "secret-access-key").read_text().strip(), "policy": policy}
    request = urllib.request.Request(
        f"{endpoint}/standin/users/{access_key}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": f"Basic {login}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
    say(f"user {name}: set")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="s3-bootstrap")
    parser.add_argument("--users", type=Path, help="one folder per user: a mounted Secret")
    parser.add_argument("--policies", type=Path, help="<user>.json: that user's IAM policy")
    parser.add_argument("buckets", nargs="*")
    args = parser.parse_args(argv)
    endpoint = os.environ["S3_ENDPOINT_URL"].rstrip("/")
    user, password = os.environ["MINIO_ROOT_USER"], os.environ["MINIO_ROOT_PASSWORD"]
    s3, existing = wait_for_buckets(endpoint, user, password)
    for name in args.buckets:
        if name not in existing:
            s3.create_bucket(Bucket=name)
        say(f"bucket {name}: {'exists' if name in existing else 'created'}")
    if args.users:
        login = base64.b64encode(f"{user}:{password}".encode()).decode()
        # Secret volumes hold their files in ..data/ with a symlink per key: skip the dot entries.
        for folder in sorted(p for p in args.users.iterdir() if not p.name.startswith(".")):
            policy = json.loads((args.policies / f"{folder.name}.json").read_text())
            put_user(endpoint, login, folder.name, folder, policy)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
