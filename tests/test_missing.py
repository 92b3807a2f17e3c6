"""tests/support/missing.py: an absent input fails under CI and is a listed skip elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import missing


def test_absent_elsewhere_skips_and_is_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(missing, "IN_CI", False)
    monkeypatch.setattr(missing, "NOTICES", [])
    with pytest.raises(pytest.skip.Exception, match="is missing \\(get it\\); CI runs this"):
        missing.file(tmp_path / "nothing.csv", hint="get it")
    listed = missing.NOTICES
    assert listed == [f"SKIPPED: {tmp_path / 'nothing.csv'} is missing (get it)"]


def test_absent_under_ci_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(missing, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true but `no-such-tool-here` is missing"):
        missing.tool("no-such-tool-here", hint="apt-get install it")


def test_present_is_returned(tmp_path: Path) -> None:
    assert missing.file(tmp_path, hint="-") == tmp_path
    assert missing.tool("sh", hint="-").endswith("/sh")
