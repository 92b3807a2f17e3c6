"""Task pods have a writable matplotlib config dir (issue 14, defect 5).

MLflow's plots import matplotlib, which writes its cache under $MPLCONFIGDIR or else $HOME; the
task pods' root filesystem is read-only, so without a writable dir every import warns and
rebuilds the font cache. MPLCONFIGDIR must lie on a writable emptyDir of the pod template, as it
does in the retraining Job.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.helm import render_chart


def test_mplconfigdir_is_on_a_writable_empty_dir() -> None:
    docs = render_chart()
    (cm,) = [
        d for d in docs if d["kind"] == "ConfigMap" and "pod-template" in d["metadata"]["name"]
    ]
    (text,) = cm["data"].values()
    spec: dict[str, Any] = yaml.safe_load(text)["spec"]
    (base,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in base["env"]}
    path = env.get("MPLCONFIGDIR")
    assert path, "task pods have no MPLCONFIGDIR"
    assert base["securityContext"]["readOnlyRootFilesystem"] is True
    empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    mounts = [
        m
        for m in base["volumeMounts"]
        if m["name"] in empty_dirs
        and not m.get("readOnly")
        and path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert mounts, f"{path} is on no writable emptyDir: {base['volumeMounts']}"


def test_task_pods_know_their_pod_and_node_names() -> None:
    """Training records where each candidate ran (issue 23): the task pod gets its pod and node
    names from the downward API, after the env it shares with the other Airflow pods."""
    docs = render_chart()
    (cm,) = [
        d for d in docs if d["kind"] == "ConfigMap" and "pod-template" in d["metadata"]["name"]
    ]
    (text,) = cm["data"].values()
    (base,) = yaml.safe_load(text)["spec"]["containers"]
    fields = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in base["env"]
        if "fieldRef" in e.get("valueFrom", {})
    }
    assert fields == {"FOREST_POD_NAME": "metadata.name", "FOREST_NODE_NAME": "spec.nodeName"}
