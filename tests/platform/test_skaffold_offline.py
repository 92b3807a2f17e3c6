"""skaffold.yaml's `offline` profile (make e2e on a machine without any container registry).

It may swap only what cannot be had offline: base images and the dataset through build args the
Dockerfiles really declare (for the target they are given to), MySQL, PostgreSQL, MinIO and
Prometheus through values-offline.yaml to stand-ins named as such, and the data window.
Everything else (the four project artifacts, the chart, the retraining CronJob, port-forwards)
stays the default config's.
"""

from __future__ import annotations

import re
from typing import Any

from tests.platform.dockerfiles import needed_stages, read
from tests.platform.test_skaffold_kind import (
    SKAFFOLD,
    assert_artifacts_and_chart_agree,
    render_release,
    rendered_images,
    with_profile,
)
from tests.support.helm import REPO_ROOT

OFFLINE = with_profile(SKAFFOLD, "offline")


def declared_args(artifact: dict[str, Any]) -> set[str]:
    """ARGs of the stages the target builds, and the global ones before the first FROM (which
    only the FROM lines read: where the base images are chosen)."""
    docker = artifact["docker"]
    in_stages = {
        rest.split("=")[0]
        for stage in needed_stages(read(docker["dockerfile"]), docker.get("target"))
        for word, rest in stage.body
        if word == "ARG"
    }
    preamble = (REPO_ROOT / docker["dockerfile"]).read_text().split("\nFROM", 1)[0]
    global_args = {
        line.split()[1].split("=")[0] for line in preamble.splitlines() if line.startswith("ARG ")
    }
    return in_stages | global_args


def test_only_builds_args_and_values_files_change() -> None:
    base = {k: v for k, v in SKAFFOLD.items() if k != "profiles"}
    assert {k: v for k, v in OFFLINE.items() if k not in ("build", "deploy")} == {
        k: v for k, v in base.items() if k not in ("build", "deploy")
    }
    assert [a["image"] for a in OFFLINE["build"]["artifacts"]] == [
        a["image"] for a in base["build"]["artifacts"]
    ]
    (release,) = OFFLINE["deploy"]["helm"]["releases"]
    (default,) = base["deploy"]["helm"]["releases"]
    assert release["valuesFiles"] == [
        *default["valuesFiles"],
        "charts/forest-mlops/values-offline.yaml",
    ]
    assert {k: v for k, v in release.items() if k != "valuesFiles"} == {
        k: v for k, v in default.items() if k != "valuesFiles"
    }


def test_every_build_arg_is_declared_by_its_dockerfile() -> None:
    for artifact in OFFLINE["build"]["artifacts"]:
        args = artifact["docker"].get("buildArgs", {})
        assert "PYTHON_IMAGE" in args, artifact["image"]
        missing = set(args) - declared_args(artifact)
        assert not missing, f"{artifact['image']}: {missing} declared by no stage it builds"
        for value in args.values():
            assert re.fullmatch(r"\{\{\.FOREST_[A-Z_]+\}\}|file", value), value


def test_stand_ins_replace_only_databases_s3_prometheus_exporters_and_perses_and_say_so() -> None:
    docs, artifacts = render_release(OFFLINE)
    assert_artifacts_and_chart_agree(docs, artifacts)
    third_party = {i for i in rendered_images(docs) if not i.startswith("forest-mlops/")}
    assert third_party == {
        "localhost:5001/forest-mlops-standin/mariadb:10.11-bookworm",
        "localhost:5001/forest-mlops-standin/postgres:15-bookworm",
        "localhost:5001/forest-mlops-standin/s3:moto-5.2.5",
        "localhost:5001/forest-mlops-standin/prometheus:2.42-bookworm",
        "localhost:5001/forest-mlops-standin/statsd-exporter:0.29.0",
        "localhost:5001/forest-mlops-standin/kube-state-metrics:2.20.0",
        "localhost:5001/forest-mlops-standin/perses:0.52.0",
    }
    # A stand-in keeps its tag across recipe changes: nodes must ask the registry every time.
    policies = {
        c["image"]: c.get("imagePullPolicy")
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "Job")
        for c in [*d["spec"]["template"]["spec"].get("initContainers", []),
                  *d["spec"]["template"]["spec"]["containers"]]
        if "forest-mlops-standin/" in c["image"]
    }  # fmt: skip
    assert set(policies) == third_party and set(policies.values()) == {"Always"}, policies
    job = next(d for d in docs if d["kind"] == "Job" and "buckets" in d["metadata"]["name"])
    (main,) = job["spec"]["template"]["spec"]["containers"]
    # The stand-in's own bootstrap (buckets and per-client users), not MinIO's mc.
    assert main["command"][:2] == ["python3", "/usr/local/lib/s3_bootstrap.py"]


def test_the_data_window_is_short_on_both_sides() -> None:
    docs, _ = render_release(OFFLINE)
    api = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("api-data")
    )
    env = {
        e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    scheduler = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("scheduler")
    )
    sched_env = {
        e["name"]: e.get("value")
        for c in scheduler["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
    }
    assert env["MIN_UPDATE_TIME"] == sched_env["FOREST_INGEST_INTERVAL_SECONDS"] == "45"


def test_builds_with_the_docker_cli_and_no_load_flag() -> None:
    """skaffold adds `--load` to `docker build` when useBuildkit is true, which the Docker 20.10
    client (the one with BuildKit on these machines) refuses; BuildKit comes from
    DOCKER_BUILDKIT=1 instead (scripts/e2e/prepare.sh, which make e2e and the dev-loop bench
    source). Every build uses the host's network."""
    local = OFFLINE["build"]["local"]
    assert "useBuildkit" not in local and local["useDockerCLI"] is True
    assert {a["docker"].get("network") for a in OFFLINE["build"]["artifacts"]} == {"host"}
    prepare = (REPO_ROOT / "scripts" / "e2e" / "prepare.sh").read_text()
    assert "DOCKER_BUILDKIT=1" in prepare
