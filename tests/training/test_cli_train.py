"""`forest-mlops train` configuration errors (the runs themselves: test_mlflow_training.py)."""

from __future__ import annotations

import pytest

from forest_mlops.cli import main


def test_missing_configuration_is_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FOREST_DATABASE_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["train", "--profile", "quick"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert "FOREST_DATABASE_URL" in err or "database_url" in err


def test_bad_margin_is_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--database-url", "sqlite://", "--tracking-uri", "http://x:5000"]
    assert main([*argv, "--promotion-margin", "-0.1"]) == 2
    assert "promotion_margin" in capsys.readouterr().err
