"""Training configuration, read from the environment at run time (flags override it)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from forest_mlops.serving.cost import Budget

DEFAULT_MODEL_NAME = "forest-cover-type"
DEFAULT_EXPERIMENT_NAME = "forest-cover-type"


def _env(name: str, env: str) -> AliasChoices:
    return AliasChoices(name, env)


class TrainingSettings(BaseSettings):
    """Names as in docs/ARCHITECTURE.md; the database URL and the tracking URI are required."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str = Field(
        validation_alias=_env("database_url", "FOREST_DATABASE_URL"), min_length=1
    )
    tracking_uri: str = Field(
        validation_alias=_env("tracking_uri", "MLFLOW_TRACKING_URI"), min_length=1
    )
    model_name: str = Field(
        DEFAULT_MODEL_NAME, validation_alias=_env("model_name", "FOREST_MODEL_NAME"), min_length=1
    )
    experiment_name: str = Field(
        DEFAULT_EXPERIMENT_NAME,
        validation_alias=_env("experiment_name", "FOREST_EXPERIMENT_NAME"),
        min_length=1,
    )
    # How much higher (macro-F1 on the current test rows) a new version must score than the
    # champion to replace it.
    promotion_margin: float = Field(
        0.0, ge=0.0, le=1.0, validation_alias=_env("promotion_margin", "FOREST_PROMOTION_MARGIN")
    )
    profile: Literal["full", "quick"] = Field(
        "full", validation_alias=_env("profile", "FOREST_TRAINING_PROFILE")
    )
    # Set when the rows came from forest_mlops.synthetic, so every run says so (data.synthetic).
    data_synthetic: bool = Field(
        False, validation_alias=_env("data_synthetic", "FOREST_DATA_SYNTHETIC")
    )
    # Refit the winner on train + validation (85 % of the rows) before registering it; the
    # test part stays out for the promotion gate.
    refit: bool = Field(True, validation_alias=_env("refit", "FOREST_TRAINING_REFIT"))
    # joblib workers of the forests; OpenMP (HistGradientBoosting) always gets one thread.
    n_jobs: int = Field(2, ge=1, validation_alias=_env("n_jobs", "FOREST_TRAINING_JOBS"))
    # The serving budget a version must fit to become champion (forest_mlops.serving.cost):
    # checked before accuracy is compared. Latency is measured at training time, on the
    # training machine; raise the limit where that machine is much slower than serving's.
    budget_artifact_mb: float = Field(
        Budget.artifact_mb,
        gt=0,
        validation_alias=_env("budget_artifact_mb", "FOREST_BUDGET_ARTIFACT_MB"),
    )
    budget_load_seconds: float = Field(
        Budget.load_seconds,
        gt=0,
        validation_alias=_env("budget_load_seconds", "FOREST_BUDGET_LOAD_SECONDS"),
    )
    budget_batch_p50_ms: float = Field(
        Budget.batch_p50_ms,
        gt=0,
        validation_alias=_env("budget_batch_p50_ms", "FOREST_BUDGET_BATCH_P50_MS"),
    )

    def budget(self) -> Budget:
        return Budget(
            artifact_mb=self.budget_artifact_mb,
            load_seconds=self.budget_load_seconds,
            batch_p50_ms=self.budget_batch_p50_ms,
        )
