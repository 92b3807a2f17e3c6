"""Configuration of the data API from environment variables (names in docs/ARCHITECTURE.md).

`MIN_UPDATE_TIME` keeps the course API's name so its deployments work unchanged; the others
carry the `API_DATA_` prefix. The CLI passes its flags as constructor arguments, which take
precedence over the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, field: str) -> AliasChoices:
    # Accept the field name too so that code and tests can pass Settings(dataset=...).
    return AliasChoices(field, name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    dataset: Path = Field(
        validation_alias=_env("API_DATA_DATASET", "dataset"),
        description="course-layout CSV (.csv or .csv.gz)",
    )
    min_update_time: float = Field(
        300.0,
        ge=0,
        validation_alias=_env("MIN_UPDATE_TIME", "min_update_time"),
        description="seconds a batch stays current for a group",
    )
    groups: int = Field(10, ge=1, validation_alias=_env("API_DATA_GROUPS", "groups"))
    batches: int = Field(10, ge=1, validation_alias=_env("API_DATA_BATCHES", "batches"))
    sample_fraction: float = Field(
        0.1,
        gt=0,
        le=1,
        validation_alias=_env("API_DATA_SAMPLE_FRACTION", "sample_fraction"),
        description="share of a batch served per response (course: batch_size // 10)",
    )
    state_path: Path | None = Field(
        None,
        validation_alias=_env("API_DATA_STATE_PATH", "state_path"),
        description="JSON file holding every group's state; unset keeps state in memory only",
    )
    seed: int | None = Field(
        None, validation_alias=_env("API_DATA_SEED", "seed"), description="sampling seed"
    )
    restart_token: SecretStr | None = Field(
        None,
        validation_alias=_env("API_DATA_RESTART_TOKEN", "restart_token"),
        description="when set, /restart_data_generation needs Authorization: Bearer <token>",
    )
    host: str = Field("0.0.0.0", validation_alias=_env("API_DATA_HOST", "host"))
    port: int = Field(8000, ge=0, le=65535, validation_alias=_env("API_DATA_PORT", "port"))

    @field_validator("restart_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        # An empty variable (a chart value left blank) must not become the token "".
        if isinstance(value, str) and not value.strip():
            return None
        return value
