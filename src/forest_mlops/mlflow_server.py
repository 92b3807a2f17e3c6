"""How the MLflow tracking server is run: one place for its flags and environment.

The Helm chart renders exactly this command (tests compare the two), the test suite starts a
real server with it, and `make demo --tracking-uri` users can copy it.

- Backend store: MySQL through PyMySQL (`mysql+pymysql://user:pass@host:3306/mlflow`);
  SQLite works the same way for local use.
- Artifacts: `--artifacts-destination s3://bucket/prefix` with proxied artifact serving, so
  clients upload and download through the server (`mlflow-artifacts:/...`) and need no S3
  credentials. Only the server gets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and
  MLFLOW_S3_ENDPOINT_URL (MinIO in the cluster, moto in the tests).
- Authentication: with `auth=True`, MLflow's basic-auth app (`--app-name basic-auth`): every
  route but /health and static files asks for a login (forest_mlops.mlflow_auth prepares its
  users). The chart always runs it; local runs (`make demo`, most tests) run without it.
- Metrics: with `metrics_dir`, `--expose-prometheus DIR`: prometheus_flask_exporter counts
  every request into prometheus_client's multiprocess files in DIR. The server's own /metrics
  is behind the login; forest_mlops.mlflow_metrics serves the same files on a port of its own
  (the chart's `metrics` sidecar).
- MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: the default job runner starts ~8 extra processes
  (about 2.5 GB RSS) that this platform does not use, and doubles start-up time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Environment the server process needs besides S3 credentials.
SERVER_ENV: dict[str, str] = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def server_command(
    *,
    backend_store_uri: str,
    artifacts_destination: str,
    host: str = "0.0.0.0",
    port: int = 5000,
    workers: int = 1,
    allowed_hosts: Sequence[str] = (),
    auth: bool = False,
    metrics_dir: str | None = None,
) -> list[str]:
    """The `mlflow server` argv (without the leading python/-m)."""
    command = [
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if allowed_hosts:
        # MLflow 3 rejects Host headers it does not know (DNS-rebinding protection); in the
        # cluster the Service name must be listed.
        command += ["--allowed-hosts", ",".join(allowed_hosts)]
    if auth:
        command += ["--app-name", "basic-auth"]
    if metrics_dir:
        command += ["--expose-prometheus", metrics_dir]
    return command


def server_env(
    *,
    s3_endpoint_url: str | None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment variables for the server process (merge into os.environ)."""
    env = dict(SERVER_ENV)
    if s3_endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint_url
    if access_key_id is not None:
        env["AWS_ACCESS_KEY_ID"] = access_key_id
    if secret_access_key is not None:
        env["AWS_SECRET_ACCESS_KEY"] = secret_access_key
    if extra:
        env.update(extra)
    return env
