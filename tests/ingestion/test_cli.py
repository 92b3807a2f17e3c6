"""`forest-mlops ingest` configuration errors: exit 2 with a message, nothing attempted."""

from __future__ import annotations

from pathlib import Path

import pytest

from forest_mlops import cli


def test_missing_api_url_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FOREST_API_URL", raising=False)
    db = tmp_path / "t.db"
    code = cli.main(["ingest", "--database-url", f"sqlite:///{db}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert "api_url" in err
    assert not db.exists()  # nothing was created


def test_requests_per_window_must_be_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--api-url", "http://127.0.0.1:9", "--database-url", f"sqlite:///{tmp_path}/t.db"]
    assert cli.main(["ingest", *args, "--requests-per-window", "0"]) == 2
    assert "requests_per_window" in capsys.readouterr().err


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from forest_mlops.cli._settings import from_flags
    from forest_mlops.cli.ingest import _FLAG_FIELDS
    from forest_mlops.ingestion import IngestionSettings

    monkeypatch.setenv("FOREST_API_URL", "http://env:8000")
    monkeypatch.setenv("FOREST_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("FOREST_GROUP_NUMBER", "7")
    monkeypatch.setenv("FOREST_REQUESTS_PER_WINDOW", "4")
    args = cli.build_parser().parse_args(["ingest", "--group", "3"])
    settings = from_flags(IngestionSettings, args, _FLAG_FIELDS, command="ingest")
    assert settings is not None
    assert (settings.api_url, settings.group_number, settings.requests_per_window) == (
        "http://env:8000",
        3,
        4,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--min-new-rows-fraction", "1"], "min_new_rows_fraction\n  Input should be less than 1"),
        (["--max-requests-per-window", "0"], "max_requests_per_window\n  Input should be greater"),
        (
            ["--requests-per-window", "3", "--min-new-rows-fraction", "0.2"],
            "cannot be combined with the stop rule's min_new_rows_fraction",
        ),
    ],
)
def test_a_bad_stop_rule_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    db = tmp_path / "t.db"
    args = ["--api-url", "http://127.0.0.1:9", "--database-url", f"sqlite:///{db}"]
    assert cli.main(["ingest", *args, *flags]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists()


def test_the_help_states_the_rules_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from forest_mlops.ingestion.fetch import DEFAULT_MAX_REQUESTS, DEFAULT_MIN_NEW_FRACTION

    with pytest.raises(SystemExit):
        cli.main(["ingest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"else {DEFAULT_MAX_REQUESTS})" in text
    assert f"else {DEFAULT_MIN_NEW_FRACTION:g})" in text
