"""Render the Helm chart with the real helm binary and return the objects as dicts.

In the manner of Airflow's helm-tests: `render_chart(values=..., show_only=[...])` runs
`helm template` and returns the parsed documents, so a test asserts on one path of one object.
helm comes from .tools/bin (scripts/install-k8s-tools.sh) or the user's PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "forest-mlops"
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"


class HelmError(RuntimeError):
    """helm exited non-zero; the message is helm's stderr."""


def tool(name: str) -> str:
    """Path of a CLI tool, preferring .tools/bin; fails clearly when it is missing."""
    local = TOOLS_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found: run `bash scripts/install-k8s-tools.sh`")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([tool("helm"), *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise HelmError(proc.stderr.strip() or proc.stdout.strip())
    return proc


def render_manifest(
    values: Mapping[str, Any] | None = None,
    *,
    value_files: Sequence[Path] = (),
    show_only: Sequence[str] = (),
    release: str = "fm",
    namespace: str = "forest",
    kube_version: str | None = None,
    chart: Path = CHART_DIR,
) -> str:
    """`helm template` output as text."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(values or {}), handle)
        values_path = handle.name
    try:
        args = ["template", release, str(chart), "--namespace", namespace]
        for path in value_files:
            args += ["--values", str(path)]
        args += ["--values", values_path]
        for template in show_only:
            args += ["--show-only", template]
        if kube_version:
            args += ["--kube-version", kube_version]
        return helm(*args).stdout
    finally:
        os.unlink(values_path)


def render_chart(
    values: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """`helm template` output parsed into a list of objects (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(render_manifest(values, **kwargs)) if doc]


def find(docs: Sequence[Mapping[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of a kind and name; fails with the inventory when it is absent."""
    for doc in docs:
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return dict(doc)
    inventory = sorted((d.get("kind"), d.get("metadata", {}).get("name")) for d in docs)
    raise KeyError(f"no {kind}/{name} in {inventory}")


def pod_containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """All containers (init included) of a workload or pod object."""
    spec: Mapping[str, Any] = obj.get("spec", {})
    if obj.get("kind") == "CronJob":
        spec = spec["jobTemplate"]["spec"]["template"]["spec"]
    elif obj.get("kind") != "Pod":
        spec = spec.get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def lint_chart(
    values: Mapping[str, Any] | None = None,
    *,
    value_files: Sequence[Path] = (),
    chart: Path = CHART_DIR,
) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` of the chart (not checked: the caller asserts on returncode/output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(values or {}), handle)
        values_path = handle.name
    try:
        args = ["lint", "--strict", str(chart)]
        for path in value_files:
            args += ["--values", str(path)]
        return helm(*args, "--values", values_path, check=False)
    finally:
        os.unlink(values_path)


def container(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The container (init included) of a workload with this name."""
    for item in pod_containers(obj):
        if item["name"] == name:
            return item
    names = [item["name"] for item in pod_containers(obj)]
    raise KeyError(f"no container {name!r} in {obj.get('kind')}/{obj['metadata']['name']}: {names}")


_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in env values, command and args: unknown references stay
    as they are and `$$` escapes a dollar."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, text)


# What the downward API would give a pod that runs outside a cluster (a container started from
# the rendered pod template): a field not listed here raises KeyError.
FIELD_STAND_INS: dict[str, str] = {"metadata.name": "local-pod", "spec.nodeName": "local-node"}


def container_env(docs: Sequence[Mapping[str, Any]], item: Mapping[str, Any]) -> dict[str, str]:
    """A container's environment as the kubelet would build it from the rendered objects: plain
    values, configMapKeyRef and secretKeyRef (decoded) resolved, downward-API fields from
    FIELD_STAND_INS, $(VAR) references expanded in order. A reference to an object the chart
    does not render raises KeyError."""
    import base64

    env: dict[str, str] = {}
    for var in item.get("env", []):
        if "value" in var:
            env[var["name"]] = expand_vars(str(var["value"]), env)
            continue
        source = var.get("valueFrom", {})
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[var["name"]] = str(find(docs, "ConfigMap", ref["name"])["data"][ref["key"]])
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = find(docs, "Secret", ref["name"])
            if ref["key"] in secret.get("stringData", {}):
                env[var["name"]] = str(secret["stringData"][ref["key"]])
            else:
                env[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        elif "fieldRef" in source:
            env[var["name"]] = FIELD_STAND_INS[source["fieldRef"]["fieldPath"]]
        else:
            raise KeyError(f"env {var['name']}: unsupported source {sorted(source)}")
    return env


def render_notes(
    values: Mapping[str, Any] | None = None,
    *,
    value_files: Sequence[Path] = (),
    release: str = "fm",
    namespace: str = "forest",
    chart: Path = CHART_DIR,
) -> str:
    """The chart's rendered NOTES.txt (`helm install --dry-run=client`, no cluster needed)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(values or {}), handle)
        values_path = handle.name
    try:
        args = ["install", release, str(chart), "--namespace", namespace, "--dry-run=client"]
        for path in value_files:
            args += ["--values", str(path)]
        out = helm(*args, "--values", values_path).stdout
    finally:
        os.unlink(values_path)
    _, sep, notes = out.partition("\nNOTES:\n")
    if not sep:
        raise HelmError(f"no NOTES in helm install --dry-run output:\n{out[-2000:]}")
    return notes
