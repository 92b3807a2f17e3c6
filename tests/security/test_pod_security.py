"""Every pod the platform runs meets Pod Security Standards' `restricted` profile, so the
namespaces can enforce it (pod-security.kubernetes.io/enforce=restricted: make e2e creates its
namespaces so; docs/KUBERNETES.md gives the commands for your own).

`restricted_violations` reads a pod spec as the admission controller's checks of the profile
(Kubernetes 1.25+, "latest") read it. It runs over the whole platform (the chart with each value
combination of tests/security, with Airflow, its task pod and k8s/), plus the render make e2e
installs (values-kind.yaml and values-offline.yaml) and the dev loop's (values-dev.yaml over them).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.conftest import Platform, worker_pod_of
from tests.security.test_platform_security import pod_spec, workloads
from tests.support.helm import CHART_DIR, render_chart

RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec the `restricted` profile refuses (empty: admitted)."""
    found: list[str] = []
    pod = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            found.append(flag)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    if [s for s in pod.get("sysctls", []) if s["name"] not in SAFE_SYSCTLS]:
        found.append("unsafe sysctls")
    pod_seccomp = (pod.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        found.append(f"pod seccomp {pod_seccomp}")
    if pod.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    if (pod.get("seLinuxOptions") or {}).keys() & {"user", "role"}:
        found.append("pod seLinuxOptions user/role")
    every = [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]
    for item in every:
        where = f"container {item['name']}"
        context = item.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f"{where}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation not false")
        if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            found.append(f"{where}: runAsNonRoot not true")
        if context.get("runAsUser") == 0:
            found.append(f"{where}: runAsUser 0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccomp {seccomp}")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{where}: capabilities not dropping ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{where}: adds {capabilities['add']}")
        if [p for p in item.get("ports", []) if p.get("hostPort")]:
            found.append(f"{where}: hostPort")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{where}: procMount")
        if (context.get("seLinuxOptions") or {}).keys() & {"user", "role"}:
            found.append(f"{where}: seLinuxOptions user/role")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{where}: hostProcess")
    return found


def every_pod(objs: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {
        f"{obj['kind']}/{obj['metadata']['name']}": restricted_violations(pod_spec(obj))
        for obj in workloads(objs)
    }


def test_every_pod_of_the_platform_meets_restricted(platform: Platform) -> None:
    pods = every_pod(platform.everything)
    assert len(pods) >= 10, sorted(pods)  # the chart's workloads, the task pod, k8s/ Jobs
    assert {name: v for name, v in pods.items() if v} == {}


@pytest.mark.parametrize(
    "files",
    [
        ["values-kind.yaml", "values-offline.yaml"],  # make e2e
        # skaffold dev -p offline,dev (bench/dev_loop.py), in the namespace make e2e made
        ["values-kind.yaml", "values-offline.yaml", "values-dev.yaml"],
    ],
)
def test_every_pod_make_e2e_and_the_dev_loop_install_meets_restricted(files: list[str]) -> None:
    docs = render_chart(value_files=[CHART_DIR / name for name in files])
    pods = every_pod([*docs, worker_pod_of(docs)])
    assert "Pod/placeholder-name" in pods  # the Airflow task pod, from the pod template
    assert {name: v for name, v in pods.items() if v} == {}


LOCKED_DOWN: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"hostNetwork": True}, "hostNetwork"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "volume h: ['hostPath']"),
        ({"securityContext": {"runAsNonRoot": True}}, "container app: seccomp None"),
        ({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
         "container app: runAsNonRoot not true"),
        ({"containers": [{"name": "app", "securityContext": {
            "privileged": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}}}]}, "container app: privileged"),
        ({"containers": [{"name": "app", "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}}]},
         "container app: adds ['NET_ADMIN']"),
        ({"containers": [{"name": "app", "securityContext": {"capabilities": {"drop": ["ALL"]}}}]},
         "container app: allowPrivilegeEscalation not false"),
    ],
)  # fmt: skip
def test_what_restricted_refuses_is_found(change: dict[str, Any], expected: str) -> None:
    assert restricted_violations(LOCKED_DOWN) == []
    assert expected in restricted_violations({**LOCKED_DOWN, **change})
