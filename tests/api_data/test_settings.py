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


def test_only_the_documented_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PORT": "1", "HOST": "10.0.0.1", "SEED": "3", "GROUPS": "2"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(dataset=Path("x.csv"))
    assert (settings.port, settings.host, settings.seed, settings.groups) == (
        8000,
        "0.0.0.0",
        None,
        10,
    )
    monkeypatch.setenv("API_DATA_DATASET", "/data/y.csv.gz")
    monkeypatch.setenv("API_DATA_GROUPS", "4")
    monkeypatch.setenv("API_DATA_STATE_PATH", "/var/state.json")
    from_env = Settings()  # type: ignore[call-arg]
    assert (from_env.dataset, from_env.groups) == (Path("/data/y.csv.gz"), 4)
    assert from_env.state_path == Path("/var/state.json")
    assert Settings(groups=6).groups == 6  # an argument beats the environment


def test_min_update_time_keeps_the_course_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIN_UPDATE_TIME", "120")
    assert Settings(dataset=Path("x.csv")).min_update_time == 120.0
    assert Settings(dataset=Path("x.csv"), min_update_time=3).min_update_time == 3.0
