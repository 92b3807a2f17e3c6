"""moto's S3 in front of MinIO's command line (written for this project).

`server DIR --address HOST:PORT [--console-address ...] [--certs-dir ...]` as the chart runs
MinIO: the address is honoured, DIR and the other options are accepted and ignored (moto keeps
everything in memory). MinIO's probe paths /minio/health/live and /minio/health/ready answer 200.
There is no console: the console address answers every request with a page saying so, so that
the README's port-forward to the console port reaches the pod and tells the user what is there.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

HEALTH_PATHS = ("/minio/health/live", "/minio/health/ready")


def with_health(app: Any) -> Any:
    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") in HEALTH_PATHS:
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

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
    app = with_health(DomainDispatcherApplication(create_backend_app))
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
