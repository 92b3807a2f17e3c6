"""checkov and hadolint, run so that a scan that read nothing or crashed cannot pass.

A policy test that accepts any output passes on an empty scan: checkov given a file with no
Kubernetes object prints a bare summary (0 resources, 0 failed) and exits 0, and hadolint with
`--no-fail` exits 0 on anything. These helpers check the exit code against the findings, count
the resources checkov scanned, and prove hadolint parsed every Dockerfile to its end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.helm import tool


def checkov(*args: str, timeout: float = 600) -> dict[str, dict[str, Any]]:
    """Run checkov with a JSON report; returns each framework's report by its check_type.

    checkov exits 1 when a check failed and 0 when none did; any other code is a crash. A
    framework that found nothing to scan gets no `results` at all, which fails here.
    """
    proc = subprocess.run(
        [tool("checkov"), *args, "--compact", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert proc.returncode in (0, 1), f"checkov crashed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"checkov printed no report:\n{proc.stderr[-3000:]}"
    parsed = json.loads(proc.stdout)
    reports = parsed if isinstance(parsed, list) else [parsed]
    for report in reports:
        assert "results" in report, f"checkov scanned nothing: {report}"
    failed = sum(len(r["results"]["failed_checks"]) for r in reports)
    assert (proc.returncode == 1) == (failed > 0), (proc.returncode, failed)
    return {report["check_type"]: report for report in reports}


def assert_clean(report: dict[str, Any], *, min_resources: int, min_passed: int) -> None:
    """No failed check, every skip with a reason, and at least as much scanned as we ship.

    The lower bounds are what the scan covers today less a margin: a render that loses
    objects, or a checkov that stops applying its checks, fails instead of passing on less.
    """
    summary = report["summary"]
    results = report["results"]
    print(
        f"checkov {report['check_type']}: {summary['resource_count']} resources, passed "
        f"{summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}"
    )
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= min_resources, summary
    assert summary["passed"] >= min_passed, summary
    assert summary["skipped"] == len(results["skipped_checks"])
    for check in results["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) > 20, (check["check_id"], check["resource"], reason)


# A line hadolint always reports (DL3003, a warning: use WORKDIR to switch directory). Appended
# to a copy of each Dockerfile, it must come back for that copy at that line: the proof that
# hadolint read the file to its end rather than silently skipping it.
CANARY = "RUN cd /tmp"
CANARY_RULE = "DL3003"


def hadolint(dockerfiles: Sequence[Path], workdir: Path) -> list[dict[str, Any]]:
    """hadolint's findings on `dockerfiles` (errors and warnings fail the command).

    Each file is scanned twice in one run: as it is, and as a copy with the canary appended.
    Returns the findings on the files as they are, after checking that each copy, and only the
    copies, reported the canary.
    """
    assert dockerfiles, "no Dockerfile to scan"
    canaries = {}
    for index, path in enumerate(dockerfiles):
        copy = workdir / f"canary-{index}" / "Dockerfile"
        copy.parent.mkdir(parents=True)
        shutil.copy(path, copy)
        text = copy.read_text()
        copy.write_text(text + ("" if text.endswith("\n") else "\n") + CANARY + "\n")
        canaries[str(copy)] = len(copy.read_text().splitlines())
    proc = subprocess.run(
        [tool("hadolint"), "--format", "json", "--failure-threshold", "warning",
         *map(str, dockerfiles), *canaries],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    # Exit 1 is expected (the canaries are warnings); anything else is hadolint failing.
    assert proc.returncode == 1, f"hadolint exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    seen = {(f["file"], f["line"]) for f in findings if f["code"] == CANARY_RULE}
    assert seen >= set(canaries.items()), f"hadolint did not read every file: {findings}"
    return [f for f in findings if f["file"] not in canaries]
