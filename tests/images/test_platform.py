"""Every long-running container of the chart, from its image, as the chart renders it
(tests/images/pods.py), on one Docker network under the chart's Service names."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.images.conftest import PROJECT_IMAGES, minio_credentials, run_client
from tests.images.pods import Pod, docker, run_once
from tests.support.exposition import samples
from tests.support.helm import find

# One record in the course layout (the first row of the UCI file, recoded).
RECORD = {
    "Elevation": 2596, "Aspect": 51, "Slope": 3, "Horizontal_Distance_To_Hydrology": 258,
    "Vertical_Distance_To_Hydrology": 0, "Horizontal_Distance_To_Roadways": 510,
    "Hillshade_9am": 221, "Hillshade_Noon": 232, "Hillshade_3pm": 148,
    "Horizontal_Distance_To_Fire_Points": 6279, "Wilderness_Area": "Rawah",
    "Soil_Type": "C7745",
}  # fmt: skip


def secret(docs: list[dict[str, Any]], name: str, key: str) -> str:
    return base64.b64decode(find(docs, "Secret", name)["data"][key]).decode()


def http(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_mysql_init_applies_the_schema_and_the_users(
    mysql: Pod, docs: list[dict[str, Any]], network: str
) -> None:
    # The probe's own option file (written by the chart's init container) logs root in.
    proc = mysql.exec(
        "mysql", "--defaults-extra-file=/etc/mysql-probe/client.cnf", "-N", "-e",
        "SHOW TABLES IN train_data; SELECT CONCAT('user:', user) FROM mysql.user;"
        " SHOW DATABASES;",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    words = set(proc.stdout.split())
    assert {"forest_cover_data", "rejected_rows", "ingestion_log", "inference_log"} <= words
    assert {"user:train", "user:mlflow", "user:inference"} <= words
    assert {"mlflow", "train_data"} <= words
    # Airflow's metadata DB is PostgreSQL's (fm-postgresql): nothing of Airflow's in MySQL.
    assert not {"user:airflow", "airflow"} & words
    # Each user logs in over the network with the chart's generated password; root may not.
    script = (
        "import os, pymysql\n"
        "for user in ('train', 'mlflow', 'inference'):\n"
        "    pymysql.connect(host='fm-mysql', user=user, password=os.environ[user]).close()\n"
        "try:\n"
        "    pymysql.connect(host='fm-mysql', user='root', password=os.environ['root'])\n"
        "except pymysql.err.OperationalError as exc:\n"
        "    print('root refused', exc.args[0])\n"
    )
    env = {
        u: secret(docs, "fm-mysql", f"{u}-password")
        for u in ("train", "mlflow", "inference", "root")
    }
    out = run_client(network, PROJECT_IMAGES["mlflow"], script, env)
    # Refused as an account (1045 access denied, 1130 host not allowed), not for any reason: a
    # server that is down or unreachable (2003, 2013) would also raise OperationalError.
    assert re.search(r"root refused (1045|1130)\b", out), out


def test_postgresql_initialises_airflows_database_for_the_generated_password_only(
    postgresql: Pod, docs: list[dict[str, Any]], network: str
) -> None:
    """The metadata DB pod as rendered: the first start runs initdb; the airflow user reaches
    its database over the network with the chart's generated password, a wrong one is refused."""
    script = (
        "import os, psycopg2\n"
        "conn = psycopg2.connect(host='fm-postgresql', port=5432, user='airflow',\n"
        "    dbname='airflow', password=os.environ['PW'], connect_timeout=10)\n"
        "with conn.cursor() as cur:\n"
        "    cur.execute('SELECT current_database(), current_user')\n"
        "    print('connected', *cur.fetchone())\n"
        "try:\n"
        "    psycopg2.connect(host='fm-postgresql', user='airflow', dbname='airflow',\n"
        "        password=os.environ['PW'] + 'x', connect_timeout=10)\n"
        "except psycopg2.OperationalError as exc:\n"
        "    print('wrong password refused:', 'password authentication failed' in str(exc))\n"
    )
    env = {"PW": secret(docs, "fm-postgresql", "airflow-password")}
    out = run_client(network, PROJECT_IMAGES["airflow"], script, env)
    assert "connected airflow airflow" in out, out
    # Refused as a login, not for any reason (a server down would raise the same class).
    assert "wrong password refused: True" in out, out


MLFLOW_CLIENT = """
import os, boto3, mlflow
mlflow.set_tracking_uri("http://fm-mlflow:5000")
with mlflow.start_run() as run:
    mlflow.log_text("stored through the tracking server", "notes/hello.txt")
s3 = boto3.client("s3", endpoint_url="http://fm-minio:9000", region_name="us-east-1",
                  aws_access_key_id=os.environ["U"], aws_secret_access_key=os.environ["P"])
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mlflow").get("Contents", [])]
print([k for k in keys if run.info.run_id in k and k.endswith("notes/hello.txt")])
"""


def mlflow_login(docs: list[dict[str, Any]], user: str) -> dict[str, str]:
    """MLflow's client env for one of the chart's users (Secret fm-mlflow-auth)."""
    return {
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": secret(docs, "fm-mlflow-auth", f"{user}-password"),
    }


def test_mlflow_serves_and_stores_an_artifact_in_s3(
    mlflow: Pod, docs: list[dict[str, Any]], network: str
) -> None:
    env = minio_credentials(docs) | mlflow_login(docs, "train")
    out = run_client(network, PROJECT_IMAGES["mlflow"], MLFLOW_CLIENT, env)
    assert out.strip().splitlines()[-1].endswith("notes/hello.txt']"), out


def test_mlflow_wants_a_login_and_refuses_inference_a_registry_write(
    mlflow: Pod, docs: list[dict[str, Any]]
) -> None:
    """The chart's auth-users init container made the users in the image's MLflow: no login
    401, /health open (the probes), inference may read but not create a registered model's
    version (403)."""
    import base64 as b64

    url = f"http://{mlflow.ip}:5000"
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    # The Service's name as Host: MLflow refuses (403) Host headers it does not know, such as
    # the container's IP, before it looks at a login.
    host = {"Host": "fm-mlflow:5000"}
    assert http(f"{url}/health")[0] == 200
    assert http(search, headers=host)[0] == 401

    def basic(user: str) -> dict[str, str]:
        login = mlflow_login(docs, user)
        pair = f"{user}:{login['MLFLOW_TRACKING_PASSWORD']}".encode()
        return host | {"Authorization": "Basic " + b64.b64encode(pair).decode()}

    assert http(search, headers=basic("inference"))[0] == 200
    create = json.dumps({"name": "forest-cover-type", "source": "models:/m-none"}).encode()
    headers = basic("inference") | {"Content-Type": "application/json"}
    status, body = http(f"{url}/api/2.0/mlflow/model-versions/create", data=create, headers=headers)
    assert status == 403, body[:300]


def test_mlflow_metrics_sidecar_serves_the_servers_counts_without_a_login(
    mlflow: Pod,
) -> None:
    """The chart's `metrics` container, from the MLflow image, reads the files the server
    writes (--expose-prometheus) from the shared emptyDir and serves them with no login."""
    url = f"http://{mlflow.ip}:5000"
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert http(search, headers={"Host": "fm-mlflow:5000"})[0] == 401  # one counted refusal
    sidecar = mlflow.start_sidecar("metrics")
    try:
        metrics = f"http://{mlflow.ip_of(sidecar)}:9102/metrics"
        deadline = time.monotonic() + 60
        while True:  # until the sidecar listens (refused before)
            try:
                status, body = http(metrics)
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert status == 200, body[:500]
        text = body.decode()
        counted = samples(text, "mlflow_http_request_total")
        assert counted.get("method=GET,status=401", 0) >= 1, text[:2000]
    finally:
        docker("rm", "--force", sidecar, check=False)


def test_the_s3_stand_in_says_on_the_console_port_that_it_has_no_console(s3: Pod) -> None:
    # The README's port-forward to MinIO's console port (9001) reaches this page offline.
    status, body = http(f"http://{s3.ip}:9001/")
    assert status == 200, body[:300]
    assert b"console is not part of this stand-in" in body


def test_api_data_serves_data(api_data: Pod) -> None:
    status, body = http(f"http://{api_data.ip}:8000/data?group_number=1")
    assert status == 200, body[:500]
    payload = json.loads(body)
    assert payload["group_number"] == 1 and len(payload["data"]) > 0


@pytest.fixture(scope="session")
def champion(
    docs: list[dict[str, Any]], network: str, mlflow: Pod, api_data: Pod, mysql: Pod
) -> None:
    """Rows collected from api-data into MySQL, then a training run that registers and
    promotes a champion: the project's own CLI in its Airflow image, with a task pod's env.
    The chart's training profile (`full`, the default): compiled forests, the only form the
    inference image serves (the quick profile may pick an sklearn model)."""
    pod_template = yaml_pod_template(docs)
    env = pod_env(docs, pod_template)
    script = (
        "import subprocess, sys\n"
        "for argv in (['forest-mlops', 'ingest', '--requests-per-window', '3'],\n"
        "             ['forest-mlops', 'train']):\n"
        "    subprocess.run(argv, check=True)\n"
    )
    run_client(network, PROJECT_IMAGES["airflow"], script, env, timeout=900)


def yaml_pod_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    import yaml

    data = find(docs, "ConfigMap", "fm-airflow-pod-template")["data"]
    return dict(yaml.safe_load(data["pod_template_file.yaml"]))


def pod_env(docs: list[dict[str, Any]], pod: dict[str, Any]) -> dict[str, str]:
    from tests.images.pods import full_env

    return full_env(docs, pod["spec"]["containers"][0])


def test_inference_is_not_ready_without_a_champion_and_serves_once_one_exists(
    inference: Pod, docs: list[dict[str, Any]], network: str, request: pytest.FixtureRequest
) -> None:

    inference.wait_ready(timeout=180, kind="livenessProbe")  # the process answers
    # No champion: nothing served. (The chart's readiness probe, /ready?no_champion_ok=true,
    # lets the pod be Ready meanwhile so `helm install --wait` can finish.)
    assert http(f"http://{inference.ip}:8001/ready")[0] == 503
    status, _ = http(
        f"http://{inference.ip}:8001/predict",
        data=json.dumps(RECORD).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 503
    request.getfixturevalue("champion")
    # The service polls the registry; /reload (with the chart's generated token) asks at once.
    token = secret(docs, "fm-inference", "reload-token")
    status, body = http(
        f"http://{inference.ip}:8001/reload",
        data=b"",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200, body[:1000]
    inference.wait_ready(timeout=180)
    assert http(f"http://{inference.ip}:8001/ready")[0] == 200
    status, body = http(
        f"http://{inference.ip}:8001/predict",
        data=json.dumps(RECORD).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200, body[:1000]
    answer = json.loads(body)
    assert answer["cover_type"] in range(7) and answer["model_version"], answer


def test_airflow_db_migrate_ran_in_the_scheduler_init_container(airflow_scheduler: Pod) -> None:
    """The scheduler pod's migrate-db init container ran `airflow db migrate` (the fixture
    fails otherwise): the schema is at the image's Airflow head. Checked from the scheduler's
    own container spec (its main container stops early: see the next test)."""
    out = run_once(
        airflow_scheduler,
        ["bash", "-c", "airflow db check-migrations --migration-wait-timeout 1 && echo MIGRATED"],
    )
    assert "MIGRATED" in out


def test_the_scheduler_runs_until_it_needs_the_kubernetes_api(airflow_scheduler: Pod) -> None:
    """The scheduler's KubernetesExecutor talks to the Kubernetes API of its pod (in-cluster
    config); a Docker network has none, so the container stops there. Everything before it
    (config, metadata DB, the scheduler job) ran; the cluster e2e runs the rest."""
    import time

    deadline = time.monotonic() + 180
    while airflow_scheduler.running() and time.monotonic() < deadline:
        time.sleep(3)
    logs = airflow_scheduler.logs(tail=400)
    assert "executor.start()" in logs and "load_incluster_config" in logs, logs[-3000:]
    assert "Service host/port is not set" in logs, logs[-3000:]


def api_token(docs: list[dict[str, Any]], server: Pod) -> str:
    password = secret(docs, "fm-airflow", "admin-password")
    status, body = http(
        f"http://{server.ip}:8080/auth/token",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status in (200, 201), body[:500]
    return str(json.loads(body)["access_token"])


def test_the_api_server_starts_and_the_generated_admin_password_logs_in(
    airflow_api_server: Pod, docs: list[dict[str, Any]]
) -> None:
    token = api_token(docs, airflow_api_server)
    status, _ = http(
        f"http://{airflow_api_server.ip}:8080/api/v2/dags",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200
    status, _ = http(
        f"http://{airflow_api_server.ip}:8080/auth/token",
        data=json.dumps({"username": "admin", "password": "wrong"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status in (401, 403)


def test_the_dag_processor_parses_both_dags_with_no_import_error(
    airflow_dag_processor: Pod, airflow_api_server: Pod, docs: list[dict[str, Any]]
) -> None:
    import time

    headers = {"Authorization": f"Bearer {api_token(docs, airflow_api_server)}"}
    base = f"http://{airflow_api_server.ip}:8080/api/v2"
    deadline = time.monotonic() + 300
    dags: set[str] = set()
    while time.monotonic() < deadline:
        assert airflow_dag_processor.running(), airflow_dag_processor.logs()
        _, body = http(f"{base}/dags", headers=headers)
        dags = {d["dag_id"] for d in json.loads(body).get("dags", [])}
        if len(dags) >= 2:
            break
        time.sleep(5)
    assert dags == {"forest_cover_data_extraction", "forest_cover_model_training"}
    _, body = http(f"{base}/importErrors", headers=headers)
    assert json.loads(body)["total_entries"] == 0, body[:3000]
    assert airflow_dag_processor.probe("livenessProbe")
