"""Only `make docker-engine` changes the machine's Docker engine (issue 21).

Installing docker.io, writing a runc shim and rewriting /etc/docker/daemon.json is
scripts/docker-engine.sh, run by `make docker-engine` (and by .ci/run, whose job is to prepare
its machine). Build and test targets only check that an engine answers
(scripts/require-engine.sh) and stop with a message naming `make docker-engine` when none does.
The no-engine path is tested with DOCKER_HOST pointing at a socket nobody listens on: the real
engine is never stopped. Build scripts are only ever run here after the static check has shown
that they no longer reach the installer, so a regression cannot reconfigure this machine's engine.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import missing
from tests.support.helm import REPO_ROOT

REQUIRE = "scripts/require-engine.sh"
INSTALLER = "scripts/docker-engine.sh"
# The scripts behind the build and test targets that need an engine, and the line (a regular
# expression) that must run the check before anything else touches Docker.
CHECKED = {
    "scripts/images/build.sh": r"^bash scripts/require-engine\.sh$",
    "scripts/cluster/up.sh": (
        r'^phase "docker engine" bash "\$REPO_DIR/scripts/require-engine\.sh"$'
    ),
}


def no_engine_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine where no engine answers: nothing listens on this socket."""
    return {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def code_lines(path: str) -> list[str]:
    """The file's lines without comments-only lines, stripped."""
    lines = (REPO_ROOT / path).read_text().splitlines()
    return [line.strip() for line in lines if not line.strip().startswith("#")]


def installer_calls() -> list[str]:
    """Every line outside the installer that runs it for more than the read-only `--client`."""
    files = [
        *(p for p in (REPO_ROOT / "scripts").rglob("*.sh") if p.name != "docker-engine.sh"),
        *(REPO_ROOT / "bench").glob("*.py"),
        REPO_ROOT / ".ci" / "run",
    ]
    found = []
    for path in files:
        rel = str(path.relative_to(REPO_ROOT))
        found += [
            f"{rel}: {line}"
            for line in code_lines(rel)
            if "docker-engine.sh" in line and "--client" not in line
        ]
    return found


def makefile_rules() -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines) of the Makefile's rules."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] | None = None
    for line in (REPO_ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip())
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+):(?!=)(.*)$", line)
        if match and not match.group(1).startswith("."):
            current = []
            rules[match.group(1)] = (match.group(2).split("|")[0].split(), current)
        elif not line.startswith("\t"):
            current = None
    return rules


def test_without_an_engine_the_check_fails_naming_make_docker_engine(tmp_path: Path) -> None:
    proc = run(["bash", REQUIRE], no_engine_env(tmp_path))
    assert proc.returncode != 0
    assert "no Docker engine answers" in proc.stderr
    assert "run `make docker-engine`" in proc.stderr
    # The client's own reason is passed on (which engine it tried), on one line.
    assert "no-engine.sock" in proc.stderr.splitlines()[0]


def test_the_check_passes_where_an_engine_answers() -> None:
    client = run(["bash", REQUIRE, "--client"], dict(os.environ)).stdout.strip()
    if not client or subprocess.run([client, "version"], capture_output=True,
                                    check=False, timeout=30).returncode != 0:  # fmt: skip
        missing.absent("a Docker engine that answers", hint="make docker-engine")
    proc = run(["bash", REQUIRE], dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("docker engine answers (")


def test_only_make_docker_engine_runs_the_installer() -> None:
    assert installer_calls() == []
    rules = makefile_rules()
    assert rules["docker-engine"][1] == [f"bash {INSTALLER}"]
    calling = [t for t, (_, recipe) in rules.items() if any(INSTALLER in r for r in recipe)]
    assert calling == ["docker-engine"]
    depending = [t for t, (prereqs, _) in rules.items() if "docker-engine" in prereqs]
    assert depending == []


@pytest.mark.parametrize("script", sorted(CHECKED))
def test_each_build_script_checks_the_engine_first(script: str) -> None:
    lines = code_lines(script)
    check = next(i for i, line in enumerate(lines) if re.search(CHECKED[script], line))
    docker_uses = [
        i for i, line in enumerate(lines) if re.search(r"\$\{?(docker_bin|DOCKER)", line)
    ]
    assert all(i > check for i in docker_uses), f"{script} uses docker before the check"


@pytest.mark.parametrize(
    ("target", "script"),
    [("e2e", "scripts/e2e/run.sh"), ("cluster-check", "scripts/cluster/check.sh")],
)
def test_make_target_checks_the_engine_before_its_script(target: str, script: str) -> None:
    recipe = makefile_rules()[target][1]
    assert recipe[0] == f"bash {REQUIRE}"
    assert recipe[1].startswith(f"bash {script}")


@pytest.mark.parametrize("script", sorted(CHECKED))
def test_a_build_script_stops_with_the_message_when_no_engine_answers(
    script: str, tmp_path: Path
) -> None:
    # Running an old build script here would run the installer against this machine's engine.
    assert not [c for c in installer_calls() if c.startswith(script)]
    proc = run(["bash", script], no_engine_env(tmp_path))
    assert proc.returncode != 0
    assert "no Docker engine answers" in proc.stderr
    assert "run `make docker-engine`" in proc.stderr


def test_ci_prepares_the_engine_itself_before_building_and_testing() -> None:
    lines = code_lines(".ci/run")
    engine = lines.index("make docker-engine")
    assert engine < lines.index("make images")
    assert engine < next(i for i, line in enumerate(lines) if line.startswith("make test"))


def test_scripts_pass_shellcheck() -> None:
    shellcheck = missing.tool("shellcheck", hint="apt-get install shellcheck")
    proc = run([shellcheck, "-x", "-P", "SCRIPTDIR", REQUIRE, INSTALLER], dict(os.environ))
    assert proc.returncode == 0, proc.stdout
