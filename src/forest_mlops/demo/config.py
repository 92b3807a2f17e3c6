"""The demo's settings: what the flags of `forest-mlops demo` set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Profile = Literal["quick", "full"]

# Defaults chosen so that a run on 2 cores stays under 4 minutes: ten 5-second batch windows
# collect the data in about a minute, leaving the rest for Airflow start-up, quick training and
# the inference service.
DEFAULT_WORKDIR = Path("demo-work")
DEFAULT_GROUP = 1
DEFAULT_MIN_UPDATE_TIME = 5.0
DEFAULT_PROFILE: Profile = "quick"
DEFAULT_MODEL_NAME = "forest-cover-type"
DEFAULT_EXPERIMENT_NAME = "forest-cover-type"
# Rows generated when no real data can be found or downloaded (the size of the dev sample).
SYNTHETIC_ROWS = 75_000
SYNTHETIC_SEED = 42


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path = DEFAULT_WORKDIR
    dataset: Path | None = None
    database_url: str | None = None
    tracking_uri: str | None = None
    group: int = DEFAULT_GROUP
    min_update_time: float = DEFAULT_MIN_UPDATE_TIME
    # None: the platform's stop rule (forest_mlops.ingestion.fetch.WindowRule), as deployed.
    requests_per_window: int | None = None
    profile: Profile = DEFAULT_PROFILE
    serve: bool = False
    # 0 picks the conventional port (8000 / 8001) when it is free, else any free port.
    api_port: int = 0
    inference_port: int = 0
    host: str = "127.0.0.1"
    model_name: str = DEFAULT_MODEL_NAME
    experiment_name: str = DEFAULT_EXPERIMENT_NAME
    dags_folder: Path | None = None

    def __post_init__(self) -> None:
        if self.group < 1:
            raise ValueError(f"--group must be >= 1, got {self.group}")
        if self.min_update_time <= 0:
            raise ValueError(f"--min-update-time must be > 0, got {self.min_update_time}")
        if self.requests_per_window is not None and self.requests_per_window < 1:
            raise ValueError(f"--requests-per-window must be >= 1, got {self.requests_per_window}")
        if self.profile not in ("quick", "full"):
            raise ValueError(f"--profile must be quick or full, got {self.profile!r}")
