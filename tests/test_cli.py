"""The `forest-mlops` console script as installed in the venv: every subcommand is registered."""

from __future__ import annotations

import re
import subprocess

from tests.support.processes import VENV_BIN

SUBCOMMANDS = (
    "api-data",
    "data",
    "demo",
    "inference",
    "ingest",
    "mlflow-auth",
    "mlflow-metrics",
    "retrain",
    "train",
)


def test_help_lists_every_subcommand() -> None:
    done = subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Subcommand lines are indented four spaces under COMMAND, each with its help text.
    lines = done.stdout.splitlines()
    listed = [line.split()[0] for line in lines if re.match(r"    [a-z]", line)]
    assert listed == sorted(SUBCOMMANDS)


def test_unknown_subcommand_is_a_usage_error() -> None:
    done = subprocess.run(
        [str(VENV_BIN / "forest-mlops"), "no-such-command"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice: 'no-such-command'" in done.stderr
