"""api_data.settings: environment names, flag precedence, an empty token."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_data.settings import Settings


def test_an_empty_restart_token_means_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_DATA_RESTART_TOKEN", "  ")
    monkeypatch.setenv("MIN_UPDATE_TIME", "120")
    settings = Settings(dataset=Path("x.csv"))
    assert settings.restart_token is None
    assert settings.min_update_time == 120.0
    monkeypatch.setenv("API_DATA_RESTART_TOKEN", "s3")
    assert Settings(dataset=Path("x.csv"), min_update_time=5).restart_token is not None
    assert Settings(dataset=Path("x.csv"), min_update_time=5).min_update_time == 5.0
