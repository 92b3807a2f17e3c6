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


def test_the_cli_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from forest_mlops.cli import main

    monkeypatch.delenv("API_DATA_DATASET", raising=False)
    assert main(["api-data"]) == 2
    assert "pass --dataset PATH or set API_DATA_DATASET" in capsys.readouterr().err
    assert main(["api-data", "--dataset", str(tmp_path / "x.csv"), "--groups", "0"]) == 2
    assert "invalid configuration" in capsys.readouterr().err
    assert main(["api-data", "--dataset", str(tmp_path / "missing.csv")]) == 1
    assert "missing.csv: file not found" in capsys.readouterr().err
