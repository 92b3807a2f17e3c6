"""The S3 stand-in's users: MinIO's root user and the per-client users the chart's bootstrap Job
adds, held as moto IAM users whose policies moto enforces (written for this project).

MinIO names a user by its access key and lets `mc admin user add` choose the secret; IAM's
CreateAccessKey chooses both itself, so the chart could not hand a client its keys in a Secret.
The stand-in therefore takes users on an endpoint of its own, `PUT /standin/users/<access key>`
with `{"secretKey": ..., "policy": {...}}` and the root user's login (HTTP basic), and writes
them into moto's IAM backend. They are kept in DIR/.standin-iam.json (mode 0600) and loaded back
at start, as MinIO keeps its users on its volume. The root user comes from MINIO_ROOT_USER and
MINIO_ROOT_PASSWORD at every start, with every right, as MinIO's does.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import IAMBackend, iam_backends

ROOT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
PREFIX = "/standin/users/"
# MinIO's rules for access keys (3-128 characters, no "=" or ",") and secret keys (8-40).
ACCESS_KEY = re.compile(r"^[^=,/\s]{3,128}$")


class BadRequest(ValueError):
    """A user request the stand-in refuses; its message is the answer's body."""


class Users:
    """The IAM users of moto's default account, and their file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    @property
    def backend(self) -> IAMBackend:
        return iam_backends[DEFAULT_ACCOUNT_ID]["aws"]

    def put(self, access_key: str, secret_key: str, policy: dict[str, Any]) -> None:
        """Create or replace the user named by its access key: that one key, that one policy."""
        if not ACCESS_KEY.match(access_key):
            raise BadRequest(f"access key {access_key!r}: 3-128 characters, no '=', ',' or '/'")
        if not isinstance(secret_key, str) or not 8 <= len(secret_key) <= 40:
            raise BadRequest("secretKey: a string of 8 to 40 characters")
        if not isinstance(policy, dict) or "Statement" not in policy:
            raise BadRequest("policy: an IAM policy document (an object with a Statement)")
        backend = self.backend
        with self.lock:
            user = backend.users.get(access_key) or backend.create_user("us-east-1", access_key)
            try:
                # Validates the document as IAM would (MalformedPolicyDocument otherwise).
                backend.put_user_policy(access_key, "forest-mlops", json.dumps(policy))
            except Exception as exc:
                raise BadRequest(f"policy refused: {exc}") from exc
            for old in list(user.access_keys):
                backend.access_keys.pop(old.access_key_id, None)
                user.access_keys.remove(old)
            key = backend.create_access_key(access_key)
            # moto drew its own key pair: the user's are the ones the chart generated.
            backend.access_keys.pop(key.access_key_id, None)
            key.access_key_id, key.secret_access_key = access_key, secret_key
            backend.access_keys[access_key] = key

    def load(self) -> int:
        """The users of the file, back into moto; how many."""
        if not self.path.exists():
            return 0
        saved = json.loads(self.path.read_text())
        for access_key, user in saved.items():
            self.put(access_key, user["secretKey"], user["policy"])
        return len(saved)

    def save(self, access_key: str, secret_key: str, policy: dict[str, Any]) -> None:
        with self.lock:
            saved = json.loads(self.path.read_text()) if self.path.exists() else {}
            saved[access_key] = {"secretKey": secret_key, "policy": policy}
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(saved, indent=1, sort_keys=True))
            tmp.chmod(0o600)
            os.replace(tmp, self.path)


def is_root(header: str, root_user: str, root_password: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return False
    # Both compared, in constant time, so the answer does not tell which one was wrong.
    good_user = hmac.compare_digest(user.encode(), root_user.encode())
    return hmac.compare_digest(password.encode(), root_password.encode()) and good_user


def with_user_endpoint(app: Any, users: Users, root_user: str, root_password: str) -> Any:
    """PUT /standin/users/<access key> (root's login) adds or replaces a user; the rest is S3."""

    def answer(start_response: Any, status: str, message: str) -> list[bytes]:
        body = (json.dumps({"message": message}) + "\n").encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if status.startswith("401"):
            headers.append(("WWW-Authenticate", 'Basic realm="s3 stand-in users"'))
        start_response(status, headers)
        return [body]

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "PUT":
            return answer(start_response, "405 Method Not Allowed", "PUT a user")
        if not is_root(environ.get("HTTP_AUTHORIZATION", ""), root_user, root_password):
            return answer(start_response, "401 Unauthorized", "the root user's login is needed")
        access_key = path[len(PREFIX) :]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(request, dict):
                raise BadRequest("the body: a JSON object with secretKey and policy")
            users.put(access_key, request.get("secretKey"), request.get("policy"))
        except (BadRequest, json.JSONDecodeError) as exc:
            return answer(start_response, "400 Bad Request", str(exc))
        users.save(access_key, request["secretKey"], request["policy"])
        return answer(start_response, "200 OK", f"user {access_key} set")

    return wsgi
