"""One real KubernetesExecutor task: the worker pod template's container, as rendered, running
the command the executor gives a task pod (`python -m airflow.sdk.execution_time.
execute_workload --json-string WORKLOAD`), against the api-server (execution API), api-data
and MySQL containers.

The workload is what the scheduler's executor would send: made with Airflow's own
ExecuteTask.make (JWT signed with the chart's secret) for the `fetch` task of a run triggered
through the REST API, in a container with the scheduler's env. The kube API the executor would
create the pod through is not here; everything the pod does once started is.
"""

from __future__ import annotations

import json
import time
from typing import Any

import yaml

from tests.images.conftest import PROJECT_IMAGES, minio_credentials, run_client
from tests.images.pods import Pod, new_workdir, run_once
from tests.images.test_platform import api_token, http
from tests.support.helm import find

DAG = "forest_cover_data_extraction"
TASK = "fetch"
MAKE_WORKLOAD = """
import sys
from airflow.executors import workloads
from airflow.executors.base_executor import BaseExecutor
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState
dag_id, run_id, task_id = sys.argv[1:4]
def find(session):
    query = session.query(TaskInstance)
    return query.filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id).one()
with create_session() as session:
    find(session).state = TaskInstanceState.QUEUED
    session.commit()
    ti = find(session)
    workload = workloads.ExecuteTask.make(ti, generator=BaseExecutor().jwt_generator)
    print("WORKLOAD " + workload.model_dump_json())
"""


def test_a_task_pod_runs_a_real_task_to_success(
    docs: list[dict[str, Any]],
    network: str,
    workdir: Any,
    airflow_scheduler: Pod,
    airflow_api_server: Pod,
    airflow_dag_processor: Pod,
    api_data: Pod,
    mysql: Pod,
    s3: Pod,
) -> None:
    headers = {"Authorization": f"Bearer {api_token(docs, airflow_api_server)}"}
    base = f"http://{airflow_api_server.ip}:8080/api/v2"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the dag-processor has serialized the DAG
        if http(f"{base}/dags/{DAG}", headers=headers)[0] == 200:
            break
        time.sleep(5)
    status, body = http(
        f"{base}/dags/{DAG}/dagRuns",
        data=json.dumps({"logical_date": None}).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert status == 200, body[:1000]
    run_id = json.loads(body)["dag_run_id"]

    out = run_once(airflow_scheduler, ["python", "-c", MAKE_WORKLOAD, DAG, run_id, TASK])
    workload = next(line for line in out.splitlines() if line.startswith("WORKLOAD "))[9:]

    template = yaml.safe_load(
        find(docs, "ConfigMap", "fm-airflow-pod-template")["data"]["pod_template_file.yaml"]
    )
    worker = Pod(docs, template, network, "task-pod", new_workdir("forest-mlops-task-"))
    argv = [
        "python",
        "-m",
        "airflow.sdk.execution_time.execute_workload",
        "--json-string",
        workload,
    ]
    run_once(worker, argv, timeout=600)

    status, body = http(f"{base}/dags/{DAG}/dagRuns/{run_id}/taskInstances/{TASK}", headers=headers)
    assert status == 200, body[:500]
    assert json.loads(body)["state"] == "success", body[:2000]
    status, body = http(
        f"{base}/dags/{DAG}/dagRuns/{run_id}/taskInstances/{TASK}/xcomEntries/return_value",
        headers=headers,
    )
    assert status == 200, body[:500]
    assert json.loads(body)["value"], "the task returned the batch it fetched from api-data"
    # The task pod wrote its log to the log bucket with the log user's keys (R-minio-airflow-logs,
    # allowed that bucket only), not the root keys: read back here with the root keys.
    listing = run_client(
        network,
        PROJECT_IMAGES["mlflow"],
        "import boto3, os\n"
        "s3 = boto3.client('s3', endpoint_url='http://fm-minio:9000', region_name='us-east-1',\n"
        "    aws_access_key_id=os.environ['U'], aws_secret_access_key=os.environ['P'])\n"
        "for o in s3.list_objects_v2(Bucket='airflow-logs').get('Contents', []):\n"
        "    print(o['Key'], o['Size'])\n",
        env=minio_credentials(docs),
    )
    logs = [line for line in listing.splitlines() if f"run_id={run_id}" in line and TASK in line]
    assert logs and all(int(line.split()[-1]) > 0 for line in logs), listing
