"""`forest-mlops demo`: the whole loop on one machine, through the code the cluster runs.

The data API and the inference service run as subprocesses, the two Airflow DAGs run with
Airflow's in-process runner (`dag.test()`) in a child process whose environment points Airflow
at SQLite metadata in the work directory, training data lives in an embedded SQLite database
(or MySQL) and MLflow in a local store (or a given tracking server). All state is in one work
directory; every child process is stopped when the demo ends, errors or is interrupted.

Modules: `config` (the settings), `workdir` (the directory layout), `console` (progress and
report output), `dataset_source` (which data to serve), `services` (managed subprocesses),
`airflow_runner` / `airflow_child` (the DAG runs), `mlflow_store` (the local MLflow store and
what training recorded), `predictions` (requests to the served model), `progress` (the DAG
runs as console lines), `report` (the summary) and `flow` (the sequence).
"""
