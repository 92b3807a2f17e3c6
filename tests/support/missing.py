"""Test inputs and tools that may be absent: a failure under CI, a loud skip or stand-in elsewhere.

CI (CI=true, set by .ci/run's machines) always has the real dev sample, ../shared/schemas,
Chromium and shellcheck, so there a missing one is a broken machine and fails the test. On a
developer's machine the test skips, or runs on a stand-in, and says so twice: in its own skip
reason and in a "stand-ins and skipped checks" section at the end of the run
(tests/conftest.py's pytest_terminal_summary), so that a green local run cannot hide them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

# What this session substituted or skipped, in the order it happened (printed at the end).
NOTICES: list[str] = []


def notice(message: str) -> None:
    """Record a substitution for the end-of-run summary (once per message)."""
    if message not in NOTICES:
        NOTICES.append(message)


def absent(what: str, *, hint: str) -> NoReturn:
    """`what` is missing: fail under CI, else skip and list it in the summary."""
    if IN_CI:
        pytest.fail(f"CI=true but {what} is missing ({hint})", pytrace=False)
    notice(f"SKIPPED: {what} is missing ({hint})")
    pytest.skip(f"{what} is missing ({hint}); CI runs this")


def tool(name: str, *, hint: str) -> str:
    """The path of an executable on PATH, or `absent`."""
    found = shutil.which(name)
    if found is None:
        absent(f"`{name}`", hint=hint)
    return found


def file(path: Path, *, hint: str) -> Path:
    """`path` when it exists, or `absent`."""
    if not path.exists():
        absent(str(path), hint=hint)
    return path
