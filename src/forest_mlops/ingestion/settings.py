"""Ingestion configuration, read from FOREST_* environment variables (flags override them)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Between windows when the API announces no schedule: the course API's MIN_UPDATE_TIME.
DEFAULT_INTERVAL_SECONDS = 300.0


class IngestionSettings(BaseSettings):
    """What one ingestion run needs; read at task run time, never at DAG parse time."""

    model_config = SettingsConfigDict(env_prefix="FOREST_", extra="ignore")

    api_url: str = Field(description="data API base URL (FOREST_API_URL)")
    database_url: str = Field(description="SQLAlchemy URL of train_data (FOREST_DATABASE_URL)")
    group_number: int = Field(default=1, ge=1, description="group to collect")
    requests_per_window: int = Field(
        default=1, ge=1, le=1000, description="GET /data calls per batch window"
    )
    ingest_interval_seconds: float | None = Field(
        default=None,
        gt=0,
        description="fixed time between windows; unset: the API's announced schedule",
    )
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    fetch_attempts: int = Field(default=5, ge=1, description="tries per request, first included")
    retry_backoff_seconds: float = Field(
        default=1.0, ge=0, description="first wait between tries; doubles each time"
    )
    retry_backoff_max_seconds: float = Field(default=30.0, ge=0)
