"""skaffold.yaml and kind-config.yaml: valid, and wired to the chart and to k8s/.

The schemas come from ../shared/schemas (skipped when absent, failed under CI=true, which has
them). The wiring tests render the real chart with helm, as skaffold's helm deployer would:
values files, then every setValueTemplates entry with skaffold's IMAGE_REPO_x / IMAGE_TAG_x
substituted, so an artifact the chart never uses, or a project image the chart renders that
skaffold does not build, fails here rather than as ImagePullBackOff in kind.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonschema
import pytest
import yaml

from tests.platform.conftest import shared_schema
from tests.platform.dockerfiles import IMAGES, needed_stages, read, stage_names
from tests.support.helm import REPO_ROOT, pod_containers, render_chart

SKAFFOLD = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
KIND = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())
PROJECT_IMAGE = re.compile(r"^forest-mlops/")
UI_PORTS = {8080, 5000, 9001, 8001, 8000, 9090}


def with_profile(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The config with a profile applied: its patches, then its replaced sections."""
    (profile,) = [p for p in config["profiles"] if p["name"] == name]
    result: dict[str, Any] = jsonpatch.apply_patch(
        {k: v for k, v in config.items() if k != "profiles"}, profile.get("patches", [])
    )
    for section in ("build", "manifests", "deploy", "portForward"):
        if section in profile:
            result[section] = copy.deepcopy(profile[section])
    return result


# What skaffold fills IMAGE_DIGEST_x with for a pushed image.
DIGEST = "sha256:" + "d" * 64


def template_key(image: str) -> str:
    return re.sub(r"[/\-.:]", "_", image)


def substituted_values(release: Mapping[str, Any], artifacts: list[str]) -> dict[str, Any]:
    """setValueTemplates with skaffold's image variables filled in, as nested values."""
    variables = {}
    for image in artifacts:
        variables[f"IMAGE_REPO_{template_key(image)}"] = image
        variables[f"IMAGE_TAG_{template_key(image)}"] = f"skaffold-{template_key(image)}"
        variables[f"IMAGE_DIGEST_{template_key(image)}"] = DIGEST
    values: dict[str, Any] = {}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in variables, f"{{{{.{name}}}}} names no artifact of {artifacts}"
        return variables[name]

    for key, template in release.get("setValueTemplates", {}).items():
        value = re.sub(r"\{\{\s*\.(\w+)\s*\}\}", fill, template)
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    for key, value in release.get("setValues", {}).items():
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def render_release(config: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    artifacts = [a["image"] for a in config["build"]["artifacts"]]
    (release,) = config["deploy"]["helm"]["releases"]
    docs = render_chart(
        substituted_values(release, artifacts),
        value_files=[REPO_ROOT / path for path in release.get("valuesFiles", [])],
        release=release["name"],
        namespace=release["namespace"],
        chart=REPO_ROOT / release["chartPath"],
    )
    return docs, artifacts


def rendered_images(docs: list[dict[str, Any]]) -> set[str]:
    """Every container image of the render, the KubernetesExecutor pod template included."""
    images = set()
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}:
            images |= {c["image"] for c in pod_containers(doc)}
        if doc["kind"] == "ConfigMap":
            for text in (doc.get("data") or {}).values():
                pod = yaml.safe_load(text) if "kind: Pod" in text else None
                if isinstance(pod, dict) and pod.get("kind") == "Pod":
                    images |= {c["image"] for c in pod_containers(pod)}
    return images


def assert_artifacts_and_chart_agree(docs: list[dict[str, Any]], artifacts: list[str]) -> None:
    images = rendered_images(docs)
    built = {f"{a}:skaffold-{template_key(a)}@{DIGEST}" for a in artifacts}
    unused = built - images
    assert not unused, f"artifacts no container runs: {sorted(unused)}"
    stray = {i for i in images if PROJECT_IMAGE.match(i)} - built
    assert not stray, f"project images the chart renders that skaffold does not set: {stray}"


class TestSchemas:
    def test_skaffold_yaml_matches_the_v4beta14_schema(self) -> None:
        schema = json.loads(shared_schema("skaffold-v4beta14.json").read_text())
        assert SKAFFOLD["apiVersion"] == "skaffold/v4beta14"
        jsonschema.Draft7Validator(schema).validate(SKAFFOLD)
        for profile in SKAFFOLD["profiles"]:
            jsonschema.Draft7Validator(schema).validate(with_profile(SKAFFOLD, profile["name"]))

    def test_the_skaffold_schema_catches_a_misspelt_key(self) -> None:
        schema = json.loads(shared_schema("skaffold-v4beta14.json").read_text())
        broken = copy.deepcopy(SKAFFOLD)
        broken["deploy"]["helm"]["releases"][0]["valueFiles"] = ["oops.yaml"]
        assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))

    def test_kind_config_matches_the_v1alpha4_schema(self) -> None:
        schema = json.loads(shared_schema("kind-v1alpha4.json").read_text())
        jsonschema.Draft7Validator(schema).validate(KIND)
        broken = {**KIND, "nodes": [{"role": "master"}]}
        assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


class TestKindCluster:
    def test_one_control_plane_and_workers_for_pods_to_spread_over(self) -> None:
        roles = [node["role"] for node in KIND["nodes"]]
        assert roles.count("control-plane") == 1
        assert roles.count("worker") >= 2

    def test_skaffold_deploys_only_to_this_cluster(self) -> None:
        assert SKAFFOLD["deploy"]["kubeContext"] == f"kind-{KIND['name']}"

    def test_no_host_port_mappings_ui_goes_through_port_forward(self) -> None:
        assert all("extraPortMappings" not in node for node in KIND["nodes"])

    def test_containerd_reads_registry_hosts_files(self) -> None:
        """scripts/cluster/registry.sh writes certs.d/localhost:5001/hosts.toml into each node:
        containerd reads it only when config_path points there."""
        patches = "\n".join(KIND["containerdConfigPatches"])
        assert re.search(
            r'\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\s+'
            r'config_path = "/etc/containerd/certs\.d"',
            patches,
        ), patches


def registry_of_the_cluster_scripts() -> str:
    """REGISTRY as scripts/cluster/lib.sh sets it (the one source of that fact)."""
    text = (REPO_ROOT / "scripts" / "cluster" / "lib.sh").read_text()
    port = re.search(r"^REGISTRY_PORT=(\d+)$", text, re.M)
    assert port and re.search(r"^REGISTRY=localhost:\$REGISTRY_PORT$", text, re.M)
    return f"localhost:{port.group(1)}"


class TestRegistry:
    def test_offline_stand_ins_are_pulled_from_the_cluster_registry(self) -> None:
        values = yaml.safe_load(
            (REPO_ROOT / "charts" / "forest-mlops" / "values-offline.yaml").read_text()
        )
        repos = [
            values["mysql"]["image"]["repository"],
            values["postgresql"]["image"]["repository"],
            values["minio"]["image"]["repository"],
            values["minio"]["bucketJob"]["image"]["repository"],
            values["prometheus"]["image"]["repository"],
        ]
        registry = registry_of_the_cluster_scripts()
        assert all(r.startswith(f"{registry}/forest-mlops-standin/") for r in repos), repos

    def test_the_skaffold_header_names_the_same_registry(self) -> None:
        header = (REPO_ROOT / "skaffold.yaml").read_text().split("apiVersion:")[0]
        assert f"--default-repo={registry_of_the_cluster_scripts()}" in header

    def test_nothing_in_the_deploy_path_loads_images_into_nodes(self) -> None:
        for script in ("scripts/e2e/run.sh", "scripts/cluster/check.sh", "scripts/cluster/up.sh"):
            code = [
                line
                for line in (REPO_ROOT / script).read_text().splitlines()
                if not line.lstrip().startswith("#")
            ]
            assert not [line for line in code if "load docker-image" in line], script


class TestDevProfile:
    CONFIG = with_profile(SKAFFOLD, "dev")

    def sync_rules(self, image: str) -> list[dict[str, str]]:
        (artifact,) = [a for a in self.CONFIG["build"]["artifacts"] if a["image"] == image]
        rules: list[dict[str, str]] = artifact["sync"]["manual"]
        return rules

    @pytest.mark.parametrize(
        ("image", "package", "component"),
        [
            ("forest-mlops/inference", "inference_api", "inference"),
            ("forest-mlops/api-data", "api_data", "api-data"),
        ],
    )
    def test_synced_sources_land_in_the_package_copy_the_service_runs(
        self, image: str, package: str, component: str
    ) -> None:
        (rule,) = self.sync_rules(image)
        matched = sorted(REPO_ROOT.glob(rule["src"]))
        assert matched, f"{rule['src']} matches no file"
        # After strip, each file lands under dest/<package>/, the copy the init container made.
        stripped = {str(p.relative_to(REPO_ROOT)).removeprefix(rule["strip"]) for p in matched}
        assert all(path.startswith(f"{package}/") for path in stripped), stripped
        docs, _ = render_release(self.CONFIG)
        (deploy,) = [
            d
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"] == f"forest-mlops-{component}"
        ]
        spec = deploy["spec"]["template"]["spec"]
        (init,) = [c for c in spec["initContainers"] if c["name"] == "dev-src"]
        (main,) = [c for c in spec["containers"] if c["name"] == component]
        mount = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}["dev-src"]
        assert mount == rule["dest"]
        assert f"{rule['dest']}/{package}" in init["command"][-1]
        assert main["command"][0] == "watchfiles" and main["command"][-1] == rule["dest"]
        assert {"name": "PYTHONPATH", "value": rule["dest"]} in main["env"]
        # The copy is an emptyDir: the root filesystem stays read-only.
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        assert init["securityContext"]["readOnlyRootFilesystem"] is True
        (volume,) = [v for v in spec["volumes"] if v["name"] == "dev-src"]
        assert "emptyDir" in volume

    def test_without_the_dev_profile_the_services_run_their_plain_command(self) -> None:
        docs, _ = render_release(SKAFFOLD)
        commands = {
            d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["command"]
            for d in docs
            if d["kind"] == "Deployment"
            and d["metadata"]["name"] in {"forest-mlops-inference", "forest-mlops-api-data"}
        }
        assert commands == {
            "forest-mlops-inference": ["forest-mlops", "inference"],
            "forest-mlops-api-data": ["forest-mlops", "api-data"],
        }


class TestSkaffoldWiring:
    def test_images_are_built_locally_and_pushed_to_the_registry(self) -> None:
        """push: the nodes pull from the cluster's registry (--default-repo), nothing is
        `kind load`ed; seen failing on the chart as it was (push: false)."""
        assert SKAFFOLD["build"]["local"]["push"] is True
        for artifact in SKAFFOLD["build"]["artifacts"]:
            assert artifact["context"] == "."
            name = artifact["image"].split("/")[-1]
            path, target = IMAGES[name]
            assert artifact["docker"]["dockerfile"] == path
            assert (REPO_ROOT / path).exists()
            assert artifact["docker"].get("target") == target
            if target is not None:
                assert target in stage_names(read(path)), f"{path} has no stage {target}"

    def test_build_args_are_read_by_the_target_they_are_given_to(self) -> None:
        """Docker only warns about a build arg no stage of the target declares (a typo, or the
        arg given to the wrong service of the shared Dockerfile, would be ignored)."""
        given = {}
        for artifact in SKAFFOLD["build"]["artifacts"]:
            docker = artifact["docker"]
            declared = {
                rest.split("=")[0]
                for stage in needed_stages(read(docker["dockerfile"]), docker.get("target"))
                for word, rest in stage.body
                if word == "ARG"
            }
            for name in docker.get("buildArgs", {}):
                assert name in declared, f"{artifact['image']}: no stage declares {name}"
                given[name] = artifact["image"]
        assert given == {"DATASET_SOURCE": "forest-mlops/api-data"}

    def test_every_artifact_runs_in_the_chart_and_every_project_image_is_built(self) -> None:
        docs, artifacts = render_release(SKAFFOLD)
        assert len(artifacts) == 4
        assert_artifacts_and_chart_agree(docs, artifacts)

    def test_the_services_profile_leaves_airflow_out_and_stays_consistent(self) -> None:
        config = with_profile(SKAFFOLD, "services")
        docs, artifacts = render_release(config)
        assert "forest-mlops/airflow" not in artifacts
        # The object store's user of the log bucket (minio.users) stays, like the bucket itself:
        # the minio subchart does not see whether Airflow is on, and an unused user costs nothing.
        kept = {"forest-mlops-minio-airflow-logs"}
        names = {d["metadata"]["name"] for d in docs}
        assert {name for name in names if "airflow" in name} == kept
        assert_artifacts_and_chart_agree(docs, artifacts)
        assert "manifests" not in config  # the CronJob runs the Airflow image
        assert {pf["port"] for pf in config["portForward"]} == UI_PORTS - {8080}

    def test_the_no_build_profile_sets_every_image_from_env(self) -> None:
        config = with_profile(SKAFFOLD, "no-build")
        assert config["build"]["artifacts"] == []
        (release,) = config["deploy"]["helm"]["releases"]
        (default_release,) = SKAFFOLD["deploy"]["helm"]["releases"]
        assert set(release["setValueTemplates"]) == set(default_release["setValueTemplates"])

    def test_port_forwards_open_every_ui_on_a_rendered_service(self) -> None:
        docs, _ = render_release(SKAFFOLD)
        services = {
            d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]}
            for d in docs
            if d["kind"] == "Service"
        }
        assert {pf["port"] for pf in SKAFFOLD["portForward"]} == UI_PORTS
        for forward in SKAFFOLD["portForward"]:
            assert forward["resourceType"] == "service"
            assert forward["port"] in services.get(forward["resourceName"], set()), forward
            assert forward["localPort"] == forward["port"]

    def test_the_retraining_cronjob_uses_an_artifact_in_the_release_namespace(
        self, retrain_objects: list[dict[str, Any]]
    ) -> None:
        """skaffold replaces an artifact's image in the kustomize output of `manifests`."""
        (release,) = SKAFFOLD["deploy"]["helm"]["releases"]
        assert SKAFFOLD["manifests"]["kustomize"]["paths"] == ["k8s"]
        artifacts = {a["image"] for a in SKAFFOLD["build"]["artifacts"]}
        for obj in retrain_objects:
            assert obj["metadata"]["namespace"] == release["namespace"]
            if obj["kind"] == "CronJob":
                (container,) = pod_containers(obj)
                assert container["image"].rsplit(":", 1)[0] in artifacts
                assert obj["metadata"]["name"].startswith(f"{release['name']}-")


@pytest.mark.parametrize("variant", ["default", "services"])
def test_setvaluetemplates_keys_exist_in_the_chart_values(variant: str) -> None:
    """Each templated key is a real value (a typo would be ignored by helm, or refused by the
    schema with additionalProperties: false; either way it must be caught here)."""
    config = SKAFFOLD if variant == "default" else with_profile(SKAFFOLD, variant)
    (release,) = config["deploy"]["helm"]["releases"]
    chart = REPO_ROOT / release["chartPath"]
    values = yaml.safe_load((chart / "values.yaml").read_text())

    def has(node: Any, path: list[str]) -> bool:
        for part in path:
            if not (isinstance(node, dict) and part in node):
                return False
            node = node[part]
        return True

    for key in release["setValueTemplates"]:
        component, *path = key.split(".")
        # The umbrella's values, or the subchart's own values.yaml (airflow keeps its defaults).
        subchart = yaml.safe_load((chart / "charts" / component / "values.yaml").read_text())
        assert has(values.get(component), path) or has(subchart, path), f"{key} is no value"
