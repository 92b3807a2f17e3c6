"""The cluster scripts (scripts/cluster/) pass shellcheck; runs without a cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import missing

CLUSTER_DIR = Path(__file__).resolve().parents[2] / "scripts" / "cluster"
NODE_FILES = CLUSTER_DIR / "recipe" / "node-image" / "files"


def test_shellcheck_finds_nothing() -> None:
    shellcheck = missing.tool("shellcheck", hint="apt-get install shellcheck")
    scripts = [
        *sorted(CLUSTER_DIR.glob("*.sh")),
        *sorted((CLUSTER_DIR / "recipe").glob("*.sh")),
        NODE_FILES / "usr" / "local" / "bin" / "entrypoint",
        NODE_FILES / "kind" / "bin" / "load-images.sh",
    ]
    proc = subprocess.run(
        [shellcheck, "-x", "-P", "SCRIPTDIR", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
