"""Run the chart's pods as Docker containers, exactly as rendered.

A rendered pod spec becomes `docker run` arguments: the container's command (the image's
entrypoint when absent) and args with $(VAR) expanded, its env as the kubelet builds it (envFrom
ConfigMaps, then env with secretKeyRef/configMapKeyRef resolved), the pod's runAsUser/runAsGroup/
fsGroup, a read-only root, all capabilities dropped, no privilege escalation, and its volumes as
host directories: emptyDirs (shared by the pod's containers, as in Kubernetes), ConfigMap and
Secret volumes (files, subPath honoured), PVCs (owned by fsGroup, as the kubelet makes them).
Init containers run to completion, in order, before the main container starts. The main
container joins the network under the names of the Services that select the pod.
Not reproduced: resource limits, probes run by a kubelet (tests call `wait_ready`), NetworkPolicies.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.helm import container_env, expand_vars, find

DOCKER = (
    "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
)


def docker(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    # BuildKit for any build, as make images and skaffold build: the Dockerfiles use RUN
    # --mount, which the legacy builder refuses (it also builds every stage before --target).
    proc = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, check=False, timeout=timeout,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}...: {proc.stderr.strip()}")
    return proc


def engine_answers() -> bool:
    try:
        return docker("info", check=False, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def image_exists(name: str) -> bool:
    return docker("image", "inspect", name, check=False).returncode == 0


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Pod":
        return dict(obj["spec"])
    return dict(obj["spec"]["template"]["spec"])


def pod_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return dict(obj["metadata"].get("labels", {}))
    return dict(obj["spec"]["template"]["metadata"].get("labels", {}))


def service_names(docs: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[str]:
    """The Services whose selector matches these pod labels: the names the pod answers to."""
    names = []
    for doc in docs:
        selector = doc.get("spec", {}).get("selector") if doc.get("kind") == "Service" else None
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            names.append(doc["metadata"]["name"])
    return names


def full_env(docs: Sequence[Mapping[str, Any]], item: Mapping[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in item.get("envFrom", []):
        if "configMapRef" in source:
            data = find(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {})
            env.update({k: str(v) for k, v in data.items()})
        elif "secretRef" in source:
            data = find(docs, "Secret", source["secretRef"]["name"]).get("data", {})
            env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
    env.update(container_env(docs, item))
    return env


@dataclass
class Pod:
    """One pod of the chart on a Docker network; `start()` runs its init containers, then its
    main container (detached)."""

    docs: Sequence[Mapping[str, Any]]
    obj: Mapping[str, Any]
    network: str
    name: str
    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(init=False)
    volume_dirs: dict[str, Path] = field(init=False, default_factory=dict)
    container_name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.spec = pod_spec(self.obj)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._make_volumes()

    # -- volumes ------------------------------------------------------------------------------
    @property
    def security(self) -> dict[str, Any]:
        return dict(self.spec.get("securityContext", {}))

    def _make_volumes(self) -> None:
        fs_group = self.security.get("fsGroup")
        claims = {
            t["metadata"]["name"] for t in self.obj.get("spec", {}).get("volumeClaimTemplates", [])
        }
        volumes = list(self.spec.get("volumes", [])) + [{"name": c, "pvc": True} for c in claims]
        for volume in volumes:
            path = self.workdir / volume["name"]
            path.mkdir(parents=True, exist_ok=True)
            self.volume_dirs[volume["name"]] = path
            if "emptyDir" in volume:
                path.chmod(0o777)  # the kubelet's emptyDir mode
            elif "pvc" in volume or "persistentVolumeClaim" in volume:
                # A new volume as the kubelet hands it over: group fsGroup, setgid, group-writable.
                if fs_group is not None:
                    os.chown(path, 0, int(fs_group))
                path.chmod(0o2775)
            elif "configMap" in volume or "secret" in volume:
                self._write_files(path, volume)
            elif "projected" in volume:
                mode = volume["projected"].get("defaultMode", 0o644)
                for source in volume["projected"]["sources"]:
                    (kind,) = source  # secret or configMap: written as a volume of its own
                    named = {"secretName": source[kind]["name"]} if kind == "secret" else {}
                    self._write_files(path, {kind: {"defaultMode": mode, **source[kind], **named}})
            else:
                raise ValueError(f"volume {volume['name']}: unsupported kind {sorted(volume)}")

    def _write_files(self, path: Path, volume: Mapping[str, Any]) -> None:
        if "configMap" in volume:
            data = {
                k: str(v).encode()
                for k, v in find(self.docs, "ConfigMap", volume["configMap"]["name"])
                .get("data", {})
                .items()
            }
            source = volume["configMap"]
        else:
            secret = find(self.docs, "Secret", volume["secret"]["secretName"])
            data = {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}
            data |= {k: str(v).encode() for k, v in secret.get("stringData", {}).items()}
            source = volume["secret"]
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            target = path / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[item["key"]])
            target.chmod(item.get("mode", source.get("defaultMode", 0o644)) & 0o777 | 0o444)

    # -- containers -----------------------------------------------------------------------------
    def run_args(self, item: Mapping[str, Any], *, detach: bool) -> list[str]:
        env = full_env(self.docs, item) | self.env_overrides
        security = self.security | dict(item.get("securityContext", {}))
        args = ["run", "--network", self.network, "--label", "forest-mlops-test=1"]
        args += ["--detach"] if detach else ["--rm"]
        uid, gid = security.get("runAsUser"), security.get("runAsGroup")
        if uid is not None:
            args += ["--user", f"{uid}:{gid if gid is not None else 0}"]
        if security.get("fsGroup") is not None:
            args += ["--group-add", str(security["fsGroup"])]
        if security.get("readOnlyRootFilesystem"):
            args += ["--read-only"]
        for cap in security.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", cap]
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for mount in item.get("volumeMounts", []):
            source = self.volume_dirs[mount["name"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
            spec = f"{source}:{mount['mountPath']}"
            args += ["--volume", spec + (":ro" if mount.get("readOnly") else "")]
        command = [expand_vars(str(a), env) for a in item.get("command", [])]
        argv = [expand_vars(str(a), env) for a in item.get("args", [])]
        if command:
            args += ["--entrypoint", command[0]]
        args.append(item["image"])
        return args + command[1:] + argv

    def run_init_containers(self, timeout: float = 600) -> None:
        for item in self.spec.get("initContainers", []):
            proc = docker(*self.run_args(item, detach=False), check=False, timeout=timeout)
            assert proc.returncode == 0, (
                f"{self.name}/{item['name']} exited {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )

    def start(self, container: str | None = None) -> Pod:
        self.run_init_containers()
        main = self.container(container)
        self.container_name = f"{self.network}-{self.name}"
        docker("rm", "--force", self.container_name, check=False)
        args = self.run_args(main, detach=True)
        args[1:1] = ["--name", self.container_name]
        labels = pod_labels(self.obj)
        for alias in service_names(self.docs, labels):
            args[1:1] = ["--network-alias", alias]
        docker(*args)
        return self

    def start_sidecar(self, container: str) -> str:
        """Run another container of the started pod beside the main one, sharing its volumes
        (the same host directories); returns the Docker container's name."""
        name = f"{self.container_name}-{container}"
        docker("rm", "--force", name, check=False)
        args = self.run_args(self.container(container), detach=True)
        args[1:1] = ["--name", name]
        docker(*args)
        return name

    def container(self, name: str | None = None) -> dict[str, Any]:
        containers = self.spec["containers"]
        if name is None:
            return dict(containers[0])
        return dict(next(c for c in containers if c["name"] == name))

    # -- state ----------------------------------------------------------------------------------
    @property
    def ip(self) -> str:
        return self.ip_of(self.container_name)

    def ip_of(self, container_name: str) -> str:
        out = docker("inspect", container_name).stdout
        networks = json.loads(out)[0]["NetworkSettings"]["Networks"]
        return str(networks[self.network]["IPAddress"])

    def running(self) -> bool:
        out = docker("inspect", "--format", "{{.State.Running}}", self.container_name, check=False)
        return out.stdout.strip() == "true"

    def logs(self, tail: int = 60) -> str:
        proc = docker("logs", "--tail", str(tail), self.container_name, check=False)
        return proc.stdout + proc.stderr

    def exec(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.container_name, *argv, check=False, timeout=timeout)

    def probe(self, kind: str = "readinessProbe", container: str | None = None) -> bool:
        """Run the rendered probe once, as the kubelet would."""
        item = self.container(container)
        probe = item[kind]
        if "exec" in probe:
            return self.exec(*probe["exec"]["command"]).returncode == 0
        http = probe["httpGet"]
        port = http["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in item["ports"] if p["name"] == port)
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{port}{http['path']}", timeout=5) as r:
                return 200 <= r.status < 400
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 300, kind: str = "readinessProbe") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name} exited:\n{self.logs()}")
            if self.probe(kind):
                return
            time.sleep(2)
        raise AssertionError(f"{self.name} not ready within {timeout} s:\n{self.logs()}")

    def remove(self) -> None:
        if self.container_name:
            docker("rm", "--force", self.container_name, check=False)


# Every pod's host directories (their databases hold hundreds of MB): removed when the session
# ends (tests/images/conftest.py), after every container is gone.
WORKDIRS: list[Path] = []


def new_workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    WORKDIRS.append(path)
    return path


def run_once(
    pod: Pod, argv: Sequence[str], container: str | None = None, timeout: float = 600
) -> str:
    """The pod's main container spec (env, user, mounts, read-only root) running `argv` instead of
    its command, to completion; its stdout. Fails with the output when it exits non-zero."""
    item = dict(pod.container(container))
    item["command"], item["args"] = list(argv[:1]), list(argv[1:])
    proc = docker(*pod.run_args(item, detach=False), check=False, timeout=timeout)
    assert proc.returncode == 0, (
        f"{argv[:3]} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
    )
    return proc.stdout
