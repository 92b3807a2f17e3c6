"""forest_mlops.cli._settings.from_flags: a given flag wins over the environment, an absent one
does not erase it, and invalid values are a message and None (the command exits 2)."""

from __future__ import annotations

import argparse

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from forest_mlops.cli._settings import from_flags


class Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")
    port: int = 8000
    host: str = "0.0.0.0"


def test_given_flags_override_and_absent_flags_keep_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "9000")
    monkeypatch.setenv("EXAMPLE_HOST", "env-host")
    args = argparse.Namespace(port=None, listen="127.0.0.1")
    settings = from_flags(Example, args, {"port": "port", "host": "listen"}, command="x")
    assert settings is not None and (settings.port, settings.host) == (9000, "127.0.0.1")


def test_an_invalid_flag_is_a_message_and_none(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(port="not a port", host=None)
    assert from_flags(Example, args, ["port", "host"], command="example") is None
    err = capsys.readouterr().err
    assert err.startswith("forest-mlops example: invalid configuration:") and "port" in err
