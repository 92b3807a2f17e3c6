"""Ingestion configuration, read from FOREST_* environment variables (flags override them)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from forest_mlops.ingestion.fetch import DEFAULT_MAX_REQUESTS, DEFAULT_MIN_NEW_FRACTION, WindowRule

# Between windows when the API announces no schedule: the course API's MIN_UPDATE_TIME.
DEFAULT_INTERVAL_SECONDS = 300.0

# The stop rule's settings and their defaults; a fixed requests_per_window excludes them.
_RULE_DEFAULTS = {
    "max_requests_per_window": DEFAULT_MAX_REQUESTS,
    "min_new_rows_fraction": DEFAULT_MIN_NEW_FRACTION,
}


class IngestionSettings(BaseSettings):
    """What one ingestion run needs; read at task run time, never at DAG parse time."""

    model_config = SettingsConfigDict(env_prefix="FOREST_", extra="ignore")

    api_url: str = Field(description="data API base URL (FOREST_API_URL)")
    database_url: str = Field(description="SQLAlchemy URL of train_data (FOREST_DATABASE_URL)")
    group_number: int = Field(default=1, ge=1, description="group to collect")
    max_requests_per_window: int = Field(
        default=DEFAULT_MAX_REQUESTS,
        ge=1,
        le=1000,
        description="most GET /data calls in one batch window (the stop rule's bound)",
    )
    min_new_rows_fraction: float = Field(
        default=DEFAULT_MIN_NEW_FRACTION,
        ge=0.0,
        lt=1.0,
        description="a window stops after the first response with fewer rows new to it than "
        "this share of the response; 0: always max_requests_per_window calls",
    )
    # Before the stop rule, every window made exactly this many calls (default 1, a tenth of
    # the batch). Kept with that meaning, so an install or script that sets it gets what it
    # asked for; unset (the default), the stop rule decides.
    requests_per_window: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="exactly this many GET /data calls per window instead of the stop rule",
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

    @field_validator("requests_per_window")
    @classmethod
    def _one_way_to_size_a_window(cls, value: int | None, info: ValidationInfo) -> int | None:
        # Both at once would leave one of them silently ignored. A field validator (not a
        # model one) so the error shows this value only, never the database URL's password.
        clashing = [
            name
            for name, default in _RULE_DEFAULTS.items()
            if info.data.get(name, default) != default
        ]
        if value is not None and clashing:
            raise ValueError(
                "a fixed number of calls (FOREST_REQUESTS_PER_WINDOW, --requests-per-window) "
                f"cannot be combined with the stop rule's {' and '.join(clashing)}: set one or "
                "the other"
            )
        return value

    def window_rule(self) -> WindowRule:
        if self.requests_per_window is not None:
            return WindowRule.fixed(self.requests_per_window)
        return WindowRule(self.max_requests_per_window, self.min_new_rows_fraction)
