"""Build the worker pod the KubernetesExecutor would create for every task of every DAG.

Run as a script in its own process (Airflow reads its configuration at import):
`python -m tests.charts.airflow.worker_pods POD_TEMPLATE DAGS_FOLDER OUTPUT` writes a JSON list of
{dag_id, task_id, override, pod} to OUTPUT (Airflow logs to stdout). The pod comes from the
cncf.kubernetes provider's PodGenerator, called as the executor calls it
(kubernetes_executor_utils.AirflowKubernetesScheduler.run_next): the chart's pod template as
the base pod, the task's executor_config pod_override merged over it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# What the executor passes as args (pod_generator.workload_to_command_args); the workload JSON
# needs a live task instance, so a placeholder stands in for it.
TASK_ARGS = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}"]


def main(template: str, dags_folder: str, output: str) -> int:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
    from kubernetes.client import ApiClient

    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        sys.stderr.write(json.dumps(bag.import_errors, indent=2))
        return 1
    api = ApiClient()
    out = []
    for dag_id, dag in sorted(bag.dags.items()):
        for task in dag.tasks:
            override = PodGenerator.from_obj(task.executor_config)
            pod = PodGenerator.construct_pod(
                dag_id=dag_id,
                task_id=task.task_id,
                pod_id=f"{dag_id}-{task.task_id}".replace("_", "-").lower(),
                try_number=1,
                kube_image=None,  # type: ignore[arg-type]  # as the executor: no worker_container_repository
                date=None,
                args=TASK_ARGS,
                pod_override_object=override,
                base_worker_pod=PodGenerator.deserialize_model_file(template),
                namespace="forest",
                scheduler_job_id="1",
                run_id="manual__2026-01-01T00:00:00+00:00",
                with_mutation_hook=True,
            )
            out.append(
                {
                    "dag_id": dag_id,
                    "task_id": task.task_id,
                    "override": api.sanitize_for_serialization(override) if override else None,
                    "pod": api.sanitize_for_serialization(pod),
                }
            )
    Path(output).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
