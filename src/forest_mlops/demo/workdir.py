"""The work directory: every file the demo writes lives under one root.

Layout (see docs/DEMO.md):

    demo-work/
      data/            the dataset served (UCI download or synthetic) unless --dataset,
                       and dataset.json: which dataset this directory's rows came from
      api-data/        the data API's state file (which batch each group is on)
      airflow/         AIRFLOW_HOME: airflow.db (SQLite metadata), logs/
      mlflow/          mlflow.db (tracking + registry) and artifacts/
      train.db         the training data (SQLite), unless --database-url
      logs/            one log file per child process
      summary.json     what the last run did (machine-readable)

Running the demo again reuses it (a collected group is not collected twice); deleting it
removes every trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkDir:
    root: Path

    @classmethod
    def create(cls, root: Path) -> WorkDir:
        workdir = cls(root.expanduser().resolve())
        for directory in (
            workdir.data_dir,
            workdir.api_data_dir,
            workdir.airflow_home,
            workdir.mlflow_dir,
            workdir.mlflow_artifacts,
            workdir.logs_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        return workdir

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def uci_csv(self) -> Path:
        return self.data_dir / "covertype.csv.gz"

    @property
    def dataset_record(self) -> Path:
        return self.data_dir / "dataset.json"

    @property
    def synthetic_csv(self) -> Path:
        return self.data_dir / "covertype_synthetic.csv.gz"

    @property
    def api_data_dir(self) -> Path:
        return self.root / "api-data"

    @property
    def api_data_state(self) -> Path:
        return self.api_data_dir / "state.json"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def airflow_db(self) -> Path:
        return self.airflow_home / "airflow.db"

    @property
    def airflow_migrated_marker(self) -> Path:
        return self.airflow_home / ".migrated"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        return self.mlflow_dir / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    @property
    def train_db(self) -> Path:
        return self.root / "train.db"

    @property
    def train_database_url(self) -> str:
        return f"sqlite:///{self.train_db}"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    @property
    def airflow_events(self) -> Path:
        return self.logs_dir / "airflow-events.jsonl"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"
