"""The scan helpers (tests/support/scans.py) fail on a scan that read nothing or found a problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scans import assert_clean, checkov, hadolint

GOOD = 'FROM debian:12.8-slim\nUSER 1000\nCMD ["true"]\n'


def test_hadolint_reports_a_warning_and_reads_every_file(tmp_path: Path) -> None:
    good, bad = tmp_path / "good" / "Dockerfile", tmp_path / "bad" / "Dockerfile"
    for path, text in ((good, GOOD), (bad, GOOD.replace("USER 1000", "USER 1000\nRUN cd /opt"))):
        path.parent.mkdir()
        path.write_text(text)
    findings = hadolint([good, bad], tmp_path)
    assert {Path(f["file"]) for f in findings} == {bad}
    assert {(f["code"], f["level"]) for f in findings} >= {("DL3003", "warning")}


def test_hadolint_on_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hadolint([tmp_path / "nowhere" / "Dockerfile"], tmp_path)


@pytest.mark.slow  # one checkov start: ~20 s
def test_checkov_fails_on_a_scan_of_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# no object here\n")
    with pytest.raises(AssertionError, match="checkov scanned nothing"):
        checkov("--framework", "kubernetes", "-f", str(empty))


def test_a_report_below_the_lower_bounds_fails() -> None:
    report = {
        "check_type": "kubernetes",
        "summary": {"passed": 12, "failed": 0, "skipped": 0, "parsing_errors": 0,
                    "resource_count": 1},
        "results": {"passed_checks": [], "failed_checks": [], "skipped_checks": []},
    }  # fmt: skip
    assert_clean(report, min_resources=1, min_passed=12)
    with pytest.raises(AssertionError):
        assert_clean(report, min_resources=2, min_passed=12)
    with pytest.raises(AssertionError):
        assert_clean(report, min_resources=1, min_passed=13)
