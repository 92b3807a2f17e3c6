"""make e2e deletes only namespaces it created (scripts/e2e/namespaces.sh, issue 21).

Before, scripts/e2e/run.sh deleted namespace forest-mlops whenever it existed, a user's running
platform included: test_a_namespace_make_e2e_did_not_create_is_never_deleted fails on that
code (the delete happens). The script runs here against a stand-in kubectl that keeps its
namespaces in a JSON file and logs every call; on the cluster `make e2e` runs it for real.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.conftest import E2E_NAMESPACE_LABEL, POD_SECURITY_LABELS
from tests.support.helm import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "e2e" / "namespaces.sh"
OURS = {E2E_NAMESPACE_LABEL[0]: E2E_NAMESPACE_LABEL[1]}
# What namespaces.sh creates: the mark, and Pod Security `restricted` enforced.
CREATED = {**OURS, **POD_SECURITY_LABELS}

# kubectl's answers to the calls namespaces.sh makes, over a JSON file of namespace -> labels.
STUB = """\
import json, os, sys
state_path, args = os.environ["STUB_STATE"], sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
state = json.load(open(state_path))
assert args[:2] == ["--context", "kind-test"], args
verb = args[2]
if os.environ.get("STUB_BROKEN"):
    sys.exit("Unable to connect to the server")
if verb == "get":
    name = args[4]
    if name in state:
        print(json.dumps({"metadata": {"name": name, "labels": state[name]}}))
elif verb == "delete":
    del state[args[4]]
elif verb == "create":
    doc = json.load(sys.stdin)
    name = doc["metadata"]["name"]
    if name in state:
        sys.exit(f'Error from server (AlreadyExists): namespaces "{name}" already exists')
    state[name] = doc["metadata"].get("labels", {})
json.dump(state, open(state_path, "w"))
"""


def run_script(tmp_path: Path, namespaces: dict[str, dict[str, str]], **env: str) -> Any:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n{STUB}")
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    state, log = tmp_path / "state.json", tmp_path / "calls.log"
    state.write_text(json.dumps(namespaces))
    log.write_text("")
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(kubectl), "kind-test", "forest-mlops", "forest-mlops-wait"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "STUB_STATE": str(state), "STUB_LOG": str(log), **env},
    )  # fmt: skip
    calls = log.read_text().splitlines()
    return proc, json.loads(state.read_text()), calls


def test_a_namespace_make_e2e_did_not_create_is_never_deleted(tmp_path: Path) -> None:
    users = {"forest-mlops": {"team": "mine"}}
    proc, after, calls = run_script(tmp_path, users)
    assert proc.returncode == 3, proc.stderr
    assert "namespace forest-mlops exists but make e2e did not create it" in proc.stderr
    assert "kubectl --context kind-test delete namespace forest-mlops" in proc.stderr  # the way out
    assert after == users
    assert not [c for c in calls if " delete " in c or " create " in c], calls


def test_nothing_is_deleted_when_any_namespace_is_foreign(tmp_path: Path) -> None:
    both = {"forest-mlops": OURS, "forest-mlops-wait": {}}
    proc, after, calls = run_script(tmp_path, both)
    assert proc.returncode == 3 and "namespace forest-mlops-wait exists" in proc.stderr
    assert after == both
    assert not [c for c in calls if " delete " in c], calls  # forest-mlops, ours, kept too


def test_namespaces_an_earlier_run_left_are_deleted_and_the_first_made_anew(
    tmp_path: Path,
) -> None:
    proc, after, calls = run_script(
        tmp_path, {"forest-mlops": OURS, "forest-mlops-wait": OURS, "other": {}}
    )
    assert proc.returncode == 0, proc.stderr
    assert after == {"forest-mlops": CREATED, "other": {}}
    deletes = [c.split()[4] for c in calls if c.split()[2] == "delete"]
    assert deletes == ["forest-mlops", "forest-mlops-wait"]


def test_a_first_run_creates_its_namespace_labelled(tmp_path: Path) -> None:
    proc, after, _ = run_script(tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    assert after == {"forest-mlops": CREATED}


def test_an_api_error_is_not_taken_for_an_absent_namespace(tmp_path: Path) -> None:
    proc, after, calls = run_script(tmp_path, {"forest-mlops": {}}, STUB_BROKEN="1")
    assert proc.returncode != 0
    assert after == {"forest-mlops": {}}
    assert [c.split()[2] for c in calls] == ["get"]


def test_the_documented_commands_set_the_same_pod_security_labels() -> None:
    """docs/KUBERNETES.md's namespace commands (for skaffold run and helm install) enforce
    what make e2e's namespaces enforce."""
    docs = (REPO_ROOT / "docs" / "KUBERNETES.md").read_text()
    command = " ".join(f"{k}={v}" for k, v in POD_SECURITY_LABELS.items())
    assert f"kubectl label namespace forest-mlops {command}" in " ".join(docs.split())
