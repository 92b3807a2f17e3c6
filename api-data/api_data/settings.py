"""Configuration of the data API from environment variables (names in docs/ARCHITECTURE.md).

`MIN_UPDATE_TIME` keeps the course API's name so its deployments work unchanged; the others
carry the `API_DATA_` prefix. The CLI passes its flags as constructor arguments, which take
precedence over the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # Only the documented names are read from the environment: API_DATA_<FIELD>, and the
    # course's MIN_UPDATE_TIME (never PORT, HOST, SEED...). populate_by_name lets the CLI
    # pass Settings(min_update_time=...).
    model_config = SettingsConfigDict(env_prefix="API_DATA_", extra="ignore", populate_by_name=True)

    dataset: Path = Field(
        description="course-layout CSV (.csv or .csv.gz)",
    )
    min_update_time: float = Field(
        300.0,
        ge=0,
        validation_alias="MIN_UPDATE_TIME",
        description="seconds a batch stays current for a group",
    )
    groups: int = Field(10, ge=1)
    batches: int = Field(10, ge=1)
    sample_fraction: float = Field(
        0.1,
        gt=0,
        le=1,
        description="share of a batch served per response (course: batch_size // 10)",
    )
    state_path: Path | None = Field(
        None,
        description="JSON file holding every group's state; unset keeps state in memory only",
    )
    seed: int | None = Field(None, description="sampling seed")
    restart_token: SecretStr | None = Field(
        None,
        description="when set, /restart_data_generation needs Authorization: Bearer <token>",
    )
    host: str = Field("0.0.0.0")
    port: int = Field(8000, ge=0, le=65535)

    @field_validator("restart_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        # An empty variable (a chart value left blank) must not become the token "".
        if isinstance(value, str) and not value.strip():
            return None
        return value
