"""Template tests of the Airflow subchart: render with helm, assert on one path of one object."""

from __future__ import annotations

import base64
import configparser
import json
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.fernet import Fernet

from tests.charts.airflow.conftest import AIRFLOW_CHART, KIND_VALUES, render_airflow
from tests.support.helm import CHART_DIR, HelmError, find, helm, pod_containers

DEPLOYMENTS = ["fm-airflow-api-server", "fm-airflow-scheduler", "fm-airflow-dag-processor"]
DEFAULT_INVENTORY = {
    ("ConfigMap", "fm-airflow-config"),
    ("ConfigMap", "fm-airflow-pod-template"),
    ("Deployment", "fm-airflow-api-server"),
    ("Deployment", "fm-airflow-dag-processor"),
    ("Deployment", "fm-airflow-scheduler"),
    ("NetworkPolicy", "fm-airflow-api-server"),
    ("NetworkPolicy", "fm-airflow-no-ingress"),
    ("Role", "fm-airflow-api-server"),
    ("Role", "fm-airflow-scheduler"),
    ("RoleBinding", "fm-airflow-api-server"),
    ("RoleBinding", "fm-airflow-scheduler"),
    ("Secret", "fm-airflow"),
    ("Service", "fm-airflow-api-server"),
    ("ServiceAccount", "fm-airflow-api-server"),
    ("ServiceAccount", "fm-airflow-dag-processor"),
    ("ServiceAccount", "fm-airflow-scheduler"),
    ("ServiceAccount", "fm-airflow-worker"),
}


def inventory(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs}


def pod_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    cm = find(docs, "ConfigMap", "fm-airflow-pod-template")
    return dict(yaml.safe_load(cm["data"]["pod_template_file.yaml"]))


def airflow_cfg(docs: list[dict[str, Any]]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(find(docs, "ConfigMap", "fm-airflow-config")["data"]["airflow.cfg"])
    return parser


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def workload_containers(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = [
        (d["metadata"]["name"], c)
        for d in docs
        if d["kind"] == "Deployment"
        for c in pod_containers(d)
    ]
    found += [("pod-template", c) for c in pod_containers(pod_template(docs))]
    return found


class TestRender:
    def test_lint_strict_subchart_and_umbrella(self) -> None:
        helm("lint", "--strict", str(AIRFLOW_CHART))
        helm("lint", "--strict", str(CHART_DIR), "--values", str(KIND_VALUES))

    def test_subchart_renders_on_its_own(self) -> None:
        out = helm("template", "fm", str(AIRFLOW_CHART), "--namespace", "forest").stdout
        assert inventory([d for d in yaml.safe_load_all(out) if d]) == DEFAULT_INVENTORY

    def test_values_yaml_matches_schema(self) -> None:
        schema = json.loads((AIRFLOW_CHART / "values.schema.json").read_text())
        values = yaml.safe_load((AIRFLOW_CHART / "values.yaml").read_text())
        jsonschema.validate(values, schema)

    def test_every_values_key_is_documented(self) -> None:
        """Each leaf key has a `# --` line above it, or sits inside a documented block."""
        lines = (AIRFLOW_CHART / "values.yaml").read_text().splitlines()
        stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
        undocumented = []
        for index, line in enumerate(lines):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
                continue
            indent = len(line) - len(line.lstrip())
            stack = [(i, d) for i, d in stack if i < indent]
            documented = lines[index - 1].strip().startswith("# --")
            following = next((n for n in lines[index + 1 :] if n.strip()), "")
            is_section = (
                stripped.endswith(":") and len(following) - len(following.lstrip()) > indent
            )
            if not (documented or any(d for _, d in stack) or is_section):
                undocumented.append(stripped)
            stack.append((indent, documented))
        assert undocumented == []


class TestInventory:
    def test_default_inventory(self, airflow_default: list[dict[str, Any]]) -> None:
        assert inventory(airflow_default) == DEFAULT_INVENTORY

    def test_kind_inventory(self, airflow_kind: list[dict[str, Any]]) -> None:
        assert inventory(airflow_kind) == DEFAULT_INVENTORY

    def test_triggerer_is_a_toggle(self) -> None:
        docs = render_airflow({"triggerer": {"enabled": True}})
        assert inventory(docs) == DEFAULT_INVENTORY | {
            ("Deployment", "fm-airflow-triggerer"),
            ("ServiceAccount", "fm-airflow-triggerer"),
        }

    def test_existing_secret_replaces_the_generated_one(self) -> None:
        docs = render_airflow({"secrets": {"existingSecret": "my-airflow"}})
        assert ("Secret", "fm-airflow") not in inventory(docs)
        refs = {
            ref["secretKeyRef"]["name"]
            for _, c in workload_containers(docs)
            for e in c.get("env", [])
            if (ref := e.get("valueFrom", {})).get("secretKeyRef", {}).get("key")
            in {"fernet-key", "jwt-secret"}
        }
        assert refs == {"my-airflow"}

    def test_disabled_renders_nothing(self) -> None:
        assert render_airflow({"enabled": False}) == []


class TestRbac:
    def test_scheduler_role_manages_pods_and_reads_logs(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        role = find(airflow_default, "Role", "fm-airflow-scheduler")
        rules = {
            (tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]
        }
        assert rules == {
            (("",), ("pods",)): {"create", "get", "list", "watch", "patch", "delete"},
            (("",), ("pods/log",)): {"get"},
        }

    def test_api_server_role_only_reads(self, airflow_default: list[dict[str, Any]]) -> None:
        role = find(airflow_default, "Role", "fm-airflow-api-server")
        verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
        assert verbs == {"get", "list"}

    def test_bindings_and_no_cluster_scope(self, airflow_default: list[dict[str, Any]]) -> None:
        kinds = {d["kind"] for d in airflow_default}
        assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
        bound = {
            (b["roleRef"]["name"], s["name"])
            for b in airflow_default
            if b["kind"] == "RoleBinding"
            for s in b["subjects"]
        }
        assert bound == {
            ("fm-airflow-scheduler", "fm-airflow-scheduler"),
            ("fm-airflow-api-server", "fm-airflow-api-server"),
        }

    def test_worker_account_has_no_rights_and_no_token(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        account = find(airflow_default, "ServiceAccount", "fm-airflow-worker")
        assert account["automountServiceAccountToken"] is False
        subjects = [
            s["name"] for b in airflow_default if b["kind"] == "RoleBinding" for s in b["subjects"]
        ]
        assert "fm-airflow-worker" not in subjects
        spec = pod_template(airflow_default)["spec"]
        assert spec["serviceAccountName"] == "fm-airflow-worker"
        assert spec["automountServiceAccountToken"] is False

    def test_each_deployment_runs_as_its_own_account(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        for name in DEPLOYMENTS:
            spec = find(airflow_default, "Deployment", name)["spec"]["template"]["spec"]
            assert spec["serviceAccountName"] == name
        dag_processor = find(airflow_default, "Deployment", "fm-airflow-dag-processor")
        assert dag_processor["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


class TestPodTemplate:
    def test_worker_pod_runs_the_scheduler_image(self, airflow_kind: list[dict[str, Any]]) -> None:
        scheduler = find(airflow_kind, "Deployment", "fm-airflow-scheduler")
        (base,) = pod_template(airflow_kind)["spec"]["containers"]
        assert base["name"] == "base"
        assert base["image"] == pod_containers(scheduler)[-1]["image"]

    def test_scheduler_mounts_the_template_it_is_told_about(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        spec = find(airflow_default, "Deployment", "fm-airflow-scheduler")["spec"]["template"][
            "spec"
        ]
        scheduler = spec["containers"][0]
        path = env_of(scheduler)["AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE"]["value"]
        mount = next(m for m in scheduler["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        assert volume["configMap"]["name"] == "fm-airflow-pod-template"
        assert path.rsplit("/", 1)[1] == "pod_template_file.yaml"

    def test_worker_env_has_run_time_settings_and_no_control_plane_secrets(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        (base,) = pod_template(airflow_default)["spec"]["containers"]
        env = env_of(base)
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]["value"] == (
            "http://fm-airflow-api-server:8080/execution/"
        )
        assert env["FOREST_DATABASE_URL"]["value"] == (
            "mysql+pymysql://train:$(TRAIN_DB_PASSWORD)@fm-mysql:3306/train_data"
        )
        assert env["TRAIN_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "fm-mysql",
            "key": "train-password",
        }
        conn = json.loads(env["AIRFLOW_CONN_FOREST_MINIO_LOGS"]["value"])
        assert conn["conn_type"] == "aws"
        assert conn["extra"]["endpoint_url"] == "http://fm-minio:9000"
        assert base["envFrom"] == [{"configMapRef": {"name": "fm-platform"}}]
        forbidden = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__API__SECRET_KEY",
            "AIRFLOW_DB_PASSWORD",
        }
        assert not forbidden & set(env)

    def test_worker_pod_carries_the_network_client_labels(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        labels = pod_template(airflow_default)["metadata"]["labels"]
        assert labels["forest-mlops/db-client"] == "true"
        assert labels["forest-mlops/s3-client"] == "true"
        assert labels["app.kubernetes.io/component"] == "worker"

    def test_task_resources_come_from_values(self) -> None:
        resources = {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "3Gi"},
        }
        docs = render_airflow({"workers": {"resources": resources}})
        assert pod_template(docs)["spec"]["containers"][0]["resources"] == resources


class TestSecrets:
    def test_generated_secret_has_the_contract_keys(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        secret = find(airflow_default, "Secret", "fm-airflow")
        assert set(secret["data"]) == {
            "fernet-key",
            "api-secret-key",
            "jwt-secret",
            "admin-password",
        }
        values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        Fernet(values["fernet-key"].encode())  # raises when it is not a valid Fernet key
        assert all(len(v) >= 32 for v in values.values())
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    def test_each_install_generates_new_values(self) -> None:
        first = find(
            render_airflow(show_only=["charts/airflow/templates/secrets/airflow-secret.yaml"]),
            "Secret",
            "fm-airflow",
        )
        second = find(
            render_airflow(show_only=["charts/airflow/templates/secrets/airflow-secret.yaml"]),
            "Secret",
            "fm-airflow",
        )
        assert all(first["data"][k] != second["data"][k] for k in first["data"])

    def test_secret_template_keeps_existing_values_with_lookup(self) -> None:
        # helm template cannot reach a cluster; the template must read the live Secret first.
        text = (AIRFLOW_CHART / "templates" / "secrets" / "airflow-secret.yaml").read_text()
        assert 'lookup "v1" "Secret" .Release.Namespace $name' in text

    def test_every_secret_reference_resolves(self, umbrella_default: list[dict[str, Any]]) -> None:
        from tests.charts.airflow.conftest import airflow_objects

        secrets = {
            d["metadata"]["name"]: set(d.get("data", {}))
            for d in umbrella_default
            if d["kind"] == "Secret"
        }
        refs = [
            (name, e["valueFrom"]["secretKeyRef"])
            for name, c in workload_containers(airflow_objects(umbrella_default))
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        assert refs
        missing = [(n, r) for n, r in refs if r["key"] not in secrets.get(r["name"], set())]
        assert missing == []

    def test_no_secret_value_in_config_or_env(self, airflow_default: list[dict[str, Any]]) -> None:
        secret = find(airflow_default, "Secret", "fm-airflow")
        values = [base64.b64decode(v).decode() for v in secret["data"].values()]
        others = yaml.safe_dump([d for d in airflow_default if d["kind"] != "Secret"])
        assert not [v for v in values if v in others]

    def test_admin_password_reaches_the_auth_manager_file_only(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        spec = find(airflow_default, "Deployment", "fm-airflow-api-server")["spec"]["template"][
            "spec"
        ]
        writer = next(c for c in spec["initContainers"] if c["name"] == "write-admin-password")
        assert env_of(writer)["ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "fm-airflow",
            "key": "admin-password",
        }
        assert "print" not in " ".join(writer["command"])
        cfg = airflow_cfg(airflow_default)
        assert (
            cfg["core"]["simple_auth_manager_passwords_file"] == "/opt/airflow/auth/passwords.json"
        )
        auth = next(v for v in spec["volumes"] if v["name"] == "auth")
        assert auth["emptyDir"]["medium"] == "Memory"


class TestContainers:
    def test_probes_and_resources_on_every_container(
        self, airflow_kind: list[dict[str, Any]]
    ) -> None:
        for name in [*DEPLOYMENTS]:
            spec = find(airflow_kind, "Deployment", name)["spec"]["template"]["spec"]
            for container in spec["containers"]:
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert probe in container, (name, container["name"], probe)
            for container in [*spec["initContainers"], *spec["containers"]]:
                assert set(container["resources"]) == {"requests", "limits"}, (
                    name,
                    container["name"],
                )
                for part in ("requests", "limits"):
                    assert set(container["resources"][part]) == {"cpu", "memory"}
        (base,) = pod_template(airflow_kind)["spec"]["containers"]
        assert set(base["resources"]) == {"requests", "limits"}

    def test_non_root_read_only_no_capabilities(self, airflow_kind: list[dict[str, Any]]) -> None:
        pods = [
            find(airflow_kind, "Deployment", n)["spec"]["template"]["spec"] for n in DEPLOYMENTS
        ]
        pods.append(pod_template(airflow_kind)["spec"])
        for spec in pods:
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["runAsUser"] == 50000
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True
                assert context["allowPrivilegeEscalation"] is False
                assert context["capabilities"]["drop"] == ["ALL"]
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts or container["name"] == "write-admin-password"

    def test_images_are_pinned(self, airflow_kind: list[dict[str, Any]]) -> None:
        for name, container in workload_containers(airflow_kind):
            repository, _, tag = container["image"].rpartition(":")
            assert repository and tag and tag != "latest", (name, container["image"])

    def test_latest_tag_is_refused(self) -> None:
        with pytest.raises(HelmError, match="`latest` is refused"):
            render_airflow({"image": {"tag": "latest"}})

    def test_unknown_value_is_refused(self) -> None:
        with pytest.raises(HelmError, match="additional properties"):
            render_airflow({"workerz": {}})

    def test_migration_runs_in_the_scheduler_and_others_wait(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        hooks = [
            d for d in airflow_default if "helm.sh/hook" in d["metadata"].get("annotations", {})
        ]
        assert hooks == []
        init = {
            name: [
                " ".join(c.get("command", []) + c.get("args", []))
                for c in find(airflow_default, "Deployment", name)["spec"]["template"]["spec"][
                    "initContainers"
                ]
            ]
            for name in DEPLOYMENTS
        }
        assert any("exec airflow db migrate" in a for a in init["fm-airflow-scheduler"])
        for name in ("fm-airflow-api-server", "fm-airflow-dag-processor"):
            assert any("exec airflow db check-migrations" in a for a in init[name])
            assert not any("db migrate" in a for a in init[name])

    def test_control_plane_is_an_s3_client_but_not_a_mysql_client(
        self, airflow_kind: list[dict[str, Any]]
    ) -> None:
        # The metadata DB is PostgreSQL, which admits these pods by their component label;
        # only task pods open train_data on MySQL.
        for name in DEPLOYMENTS:
            labels = find(airflow_kind, "Deployment", name)["spec"]["template"]["metadata"][
                "labels"
            ]
            assert "forest-mlops/db-client" not in labels
            assert labels["forest-mlops/s3-client"] == "true"


class TestConfig:
    def test_airflow_cfg(self, airflow_default: list[dict[str, Any]]) -> None:
        cfg = airflow_cfg(airflow_default)
        assert cfg["core"]["executor"] == "KubernetesExecutor"
        assert cfg["core"]["dags_folder"] == "/opt/airflow/dags"
        assert cfg["core"]["load_examples"] == "False"
        assert cfg["kubernetes_executor"]["namespace"] == "forest"
        assert cfg["logging"]["remote_logging"] == "True"
        assert cfg["logging"]["remote_base_log_folder"] == "s3://airflow-logs"
        assert cfg["logging"]["remote_log_conn_id"] == "forest_minio_logs"
        assert cfg["scheduler"]["enable_health_check"] == "True"

    def test_config_overrides_merge(self) -> None:
        docs = render_airflow(
            {
                "config": {
                    "core": {"parallelism": 8},
                    "kubernetes_executor": {"delete_worker_pods": "False"},
                }
            }
        )
        cfg = airflow_cfg(docs)
        assert cfg["core"]["parallelism"] == "8"
        assert cfg["core"]["executor"] == "KubernetesExecutor"
        assert cfg["kubernetes_executor"]["delete_worker_pods"] == "False"

    def test_metadata_db_is_postgresql_with_psycopg2(
        self, airflow_default: list[dict[str, Any]]
    ) -> None:
        scheduler = find(airflow_default, "Deployment", "fm-airflow-scheduler")["spec"]["template"][
            "spec"
        ]["containers"][0]
        env = env_of(scheduler)
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["value"] == (
            "postgresql+psycopg2://airflow:$(AIRFLOW_DB_PASSWORD)@fm-postgresql:5432/airflow"
        )
        assert env["AIRFLOW_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "fm-postgresql",
            "key": "airflow-password",
        }
        names = [e["name"] for e in scheduler["env"]]
        assert names.index("AIRFLOW_DB_PASSWORD") < names.index(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        )
