"""Configuration of the inference service from environment variables.

Names follow docs/ARCHITECTURE.md: the MLflow and model names are shared with training
(`MLFLOW_TRACKING_URI`, `FOREST_MODEL_NAME`), the rest carry the `INFERENCE_` prefix. The CLI
passes its flags as constructor arguments, which take precedence over the environment.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, field: str) -> AliasChoices:
    # Accept the field name too so that code and tests can pass Settings(model_name=...).
    return AliasChoices(field, name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    tracking_uri: str | None = Field(
        None,
        validation_alias=_env("MLFLOW_TRACKING_URI", "tracking_uri"),
        description="MLflow tracking/registry server; unset uses MLflow's own default",
    )
    model_name: str = Field(
        "forest-cover-type",
        min_length=1,
        validation_alias=_env("FOREST_MODEL_NAME", "model_name"),
    )
    model_alias: str = Field(
        "champion", min_length=1, validation_alias=_env("FOREST_MODEL_ALIAS", "model_alias")
    )
    host: str = Field("0.0.0.0", validation_alias=_env("INFERENCE_HOST", "host"))
    port: int = Field(8001, ge=0, le=65535, validation_alias=_env("INFERENCE_PORT", "port"))
    poll_interval: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("INFERENCE_POLL_INTERVAL", "poll_interval"),
        description="seconds between registry checks for a moved alias",
    )
    registry_timeout: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("INFERENCE_REGISTRY_TIMEOUT", "registry_timeout"),
        description="seconds one MLflow request may take before the check counts as failed",
    )
    reload_token: SecretStr | None = Field(
        None,
        validation_alias=_env("INFERENCE_RELOAD_TOKEN", "reload_token"),
        description="when set, POST /reload needs Authorization: Bearer <token>",
    )
    max_batch: int = Field(
        10_000,
        ge=1,
        validation_alias=_env("INFERENCE_MAX_BATCH", "max_batch"),
        description="most records one /predict request may carry",
    )
    log_database_url: SecretStr | None = Field(
        None,
        validation_alias=_env("INFERENCE_LOG_DATABASE_URL", "log_database_url"),
        description="SQLAlchemy URL; when set, predictions go to the inference_log table",
    )
    log_queue_size: int = Field(
        100_000,
        ge=1,
        validation_alias=_env("INFERENCE_LOG_QUEUE_SIZE", "log_queue_size"),
        description="predicted rows held for the inference log before new ones are dropped",
    )
