"""Cross-cutting security rules over EVERYTHING the cluster runs: the umbrella chart rendered
with each value combination the chart tests use (Airflow included), the Airflow task pod built
from the rendered pod template, and the kustomize builds of k8s/; plus the images' Dockerfiles.

Per-component tests live with their owners (tests/charts/test_workloads.py,
tests/charts/airflow/test_airflow_templates.py, tests/platform/test_images.py); these assert
the rules once over the whole platform, so a new component or option cannot slip past them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.security.conftest import RENDERS, Platform
from tests.support.helm import REPO_ROOT, render_chart

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
# Values nobody may use as a credential (the well-known defaults of MinIO, Airflow, MySQL
# images and tutorials).
WELL_KNOWN = {
    "", "admin", "airflow", "changeme", "default", "inference", "minio", "minioadmin",
    "minio123", "mlflow", "mysql", "pass", "password", "root", "secret", "test", "train",
}  # fmt: skip
_DEFAULT_WORDS = "admin|airflow|root|mlflow|train|password|pass|changeme|secret|minioadmin"
WELL_KNOWN_PATTERNS = [
    re.compile(r"minioadmin", re.I),
    # user:password@ in a URL
    re.compile(rf"\b(admin|airflow|root|mlflow|train|user)[:/]({_DEFAULT_WORDS})@", re.I),
    # PASSWORD=admin, "secret": "changeme", ...
    re.compile(
        rf"(PASSWORD|SECRET|TOKEN)[\"']?\s*[:=]\s*[\"']?({_DEFAULT_WORDS})[\"']?\s*$", re.I | re.M
    ),
]
# Env names that carry a credential: their value must come from a Secret.
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|TOKEN|FERNET|CREDENTIAL|ACCESS_KEY|(^|_)KEY$|_KEY_ID$|_ROOT_USER$"
)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://([^:/@\s\"]+):([^@\s\"]*)@", re.I)
# Where the kubelet expands $(VAR) into a program's argv, a password is visible to processes
# of the same container (/proc/<pid>/cmdline) but not in the pod spec or any log: MLflow's
# backend store URI and `mlflow db upgrade` take it only as an argument. Listed in
# docs/RELIABILITY.md; nothing else may do it.
ARGV_PASSWORD_ALLOWED = {("mlflow", "mlflow"), ("mlflow", "db-upgrade")}


def workloads(objs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (o for o in objs if o.get("kind") in WORKLOAD_KINDS)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        spec: dict[str, Any] = obj["spec"]
    elif obj["kind"] == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = obj["spec"]["template"]["spec"]
    return spec


def containers(obj: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    spec = pod_spec(obj)
    for item in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        yield obj["metadata"]["name"], item["name"], item


def secret_values(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Every decoded value of every rendered Secret, by `secret/key`."""
    values = {}
    for doc in docs:
        if doc["kind"] != "Secret":
            continue
        for key, value in doc.get("data", {}).items():
            values[f"{doc['metadata']['name']}/{key}"] = base64.b64decode(value).decode()
        for key, value in doc.get("stringData", {}).items():
            values[f"{doc['metadata']['name']}/{key}"] = str(value)
    return values


def secret_env_names(item: dict[str, Any]) -> set[str]:
    """Env vars of a container that hold a Secret's value, directly or by $(VAR) expansion."""
    names: set[str] = set()
    for var in item.get("env", []):
        value = str(var.get("value", ""))
        if "secretKeyRef" in var.get("valueFrom", {}) or any(f"$({n})" in value for n in names):
            names.add(var["name"])
    return names


# --- credentials -------------------------------------------------------------------------


def test_no_well_known_credential_in_anything_deployed(platform: Platform) -> None:
    texts = {"rendered": yaml.safe_dump_all(platform.everything)}
    for path in [
        *REPO_ROOT.glob("images/*/Dockerfile"),
        *REPO_ROOT.glob("mysql-init/*"),
        *REPO_ROOT.glob("charts/forest-mlops/**/values*.yaml"),
        *REPO_ROOT.glob("k8s/**/*.yaml"),
    ]:
        texts[str(path.relative_to(REPO_ROOT))] = path.read_text()
    for name, text in texts.items():
        for pattern in WELL_KNOWN_PATTERNS:
            found = pattern.search(text)
            assert found is None, f"{name}: {found.group(0)!r}" if found else ""
    for key, value in secret_values(platform.docs).items():
        assert value.lower() not in WELL_KNOWN, f"{key} is a well-known default"
        assert len(value) >= 16, f"{key} is only {len(value)} characters"


def test_every_credential_env_comes_from_a_secret(platform: Platform) -> None:
    configmap_keys = {
        doc["metadata"]["name"]: set(doc.get("data", {}))
        for doc in platform.everything
        if doc["kind"] == "ConfigMap"
    }
    for obj in workloads(platform.everything):
        for workload, name, item in containers(obj):
            where = f"{platform.name}: {workload}/{name}"
            from_secret = secret_env_names(item)
            for var in item.get("env", []):
                if SECRET_NAME.search(var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{where} {var['name']}"
                value = str(var.get("value", ""))
                for match in URL_WITH_PASSWORD.finditer(value):
                    password = match.group(2)
                    reference = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", password)
                    assert reference and reference.group(1) in from_secret, (
                        f"{where} {var['name']}: a literal password in a URL"
                    )
            for source in item.get("envFrom", []):
                if "configMapRef" in source:
                    keys = configmap_keys.get(source["configMapRef"]["name"], set())
                    leaked = sorted(k for k in keys if SECRET_NAME.search(k))
                    assert leaked == [], f"{where}: credentials in a ConfigMap: {leaked}"


def test_no_secret_value_outside_the_secrets(platform: Platform) -> None:
    values = secret_values(platform.docs)
    others = [doc for doc in platform.everything if doc["kind"] != "Secret"]
    text = yaml.safe_dump_all(others)
    for key, value in values.items():
        assert value not in text, f"{platform.name}: the value of {key} is written outside it"


def test_secrets_are_generated_anew_for_each_install(platform: Platform) -> None:
    values, files = RENDERS[platform.name]
    first = secret_values(platform.docs)
    second = secret_values(render_chart(values, value_files=files))
    assert first.keys() == second.keys()
    same = sorted(key for key in first if first[key] == second[key])
    assert same == [], f"{platform.name}: not generated per install: {same}"


def scripts(item: dict[str, Any]) -> list[str]:
    return [str(part) for part in [*item.get("command", []), *item.get("args", [])]]


def test_no_container_prints_a_secret(platform: Platform) -> None:
    echo = re.compile(r"\b(echo|printf|print\(|cat\b|logger\b)")
    for obj in workloads(platform.everything):
        for workload, name, item in containers(obj):
            where = f"{platform.name}: {workload}/{name}"
            names = secret_env_names(item)
            if not names:
                continue
            for script in scripts(item):
                assert not re.search(r"set\s+-\w*x|set\s+-o\s+xtrace|bash\s+-\w*x", script), (
                    f"{where}: shell tracing would print the secrets"
                )
                for line in script.splitlines():
                    mentions = [n for n in names if re.search(rf"\b{n}\b", line)]
                    if mentions and echo.search(line):
                        # Written to a file the program reads, never to stdout/stderr.
                        assert re.search(r"[^&]>\s*[/\w]", line) and ">&" not in line, (
                            f"{where}: prints {mentions}: {line.strip()}"
                        )
            for part in scripts(item):
                if (workload.removeprefix("fm-"), name) in ARGV_PASSWORD_ALLOWED:
                    continue
                for secret in names:
                    assert f"$({secret})" not in part, f"{where}: {secret} in the argv"


# --- pods and containers -------------------------------------------------------------------


def test_every_container_runs_locked_down(platform: Platform) -> None:
    for obj in workloads(platform.everything):
        spec = pod_spec(obj)
        pod_context = spec.get("securityContext", {})
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(flag), f"{obj['metadata']['name']}: {flag}"
        assert not [v for v in spec.get("volumes", []) if "hostPath" in v]
        for workload, name, item in containers(obj):
            where = f"{platform.name}: {workload}/{name}"
            context = item.get("securityContext", {})
            non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
            user = context.get("runAsUser", pod_context.get("runAsUser"))
            assert non_root is True, where
            assert user is None or user > 0, where
            assert context.get("privileged") is not True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in context.get("capabilities", {}).get("drop", []), where
            assert not context.get("capabilities", {}).get("add"), where
            # No exception is needed today: every program runs with a read-only root
            # filesystem and writes only to its mounts (emptyDir /tmp, PVCs).
            assert context.get("readOnlyRootFilesystem") is True, where


def test_only_pods_that_call_the_kubernetes_api_get_a_token(platform: Platform) -> None:
    bound = {
        subject["name"]
        for doc in platform.docs
        if doc["kind"] == "RoleBinding"
        for subject in doc["subjects"]
    }
    accounts = {
        doc["metadata"]["name"]: doc.get("automountServiceAccountToken")
        for doc in platform.docs
        if doc["kind"] == "ServiceAccount"
    }
    for obj in workloads(platform.everything):
        spec = pod_spec(obj)
        account = spec.get("serviceAccountName", "default")
        mounted = spec.get("automountServiceAccountToken", accounts.get(account, True))
        if mounted:
            assert account in bound, f"{obj['metadata']['name']} mounts a token it cannot use"
    for account, automount in accounts.items():
        if account not in bound:
            assert automount is False, f"{account} has no Role but would mount a token"


# --- RBAC ----------------------------------------------------------------------------------

# What the Airflow scheduler (KubernetesExecutor) needs for its task pods, what the API
# server needs to show a running task's log, and what kube-state-metrics reads to export the
# namespace's state (list/watch only, the kinds of its --resources). Nothing else in the
# platform calls the API.
EXPECTED_RULES = {
    "fm-airflow-scheduler": {
        ("", "pods"): {"create", "get", "list", "watch", "patch", "delete"},
        ("", "pods/log"): {"get"},
    },
    "fm-airflow-api-server": {("", "pods"): {"get", "list"}, ("", "pods/log"): {"get"}},
    "fm-kube-state-metrics": {
        ("", "pods"): {"list", "watch"},
        ("apps", "deployments"): {"list", "watch"},
        ("apps", "statefulsets"): {"list", "watch"},
        ("batch", "jobs"): {"list", "watch"},
        ("batch", "cronjobs"): {"list", "watch"},
    },
}


def test_rbac_is_namespaced_and_least_privilege(platform: Platform) -> None:
    kinds = {doc["kind"] for doc in platform.everything}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, platform.name
    roles = {doc["metadata"]["name"]: doc for doc in platform.docs if doc["kind"] == "Role"}
    assert set(roles) == set(EXPECTED_RULES), sorted(roles)
    for name, role in roles.items():
        granted: dict[tuple[str, str], set[str]] = {}
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), f"{name}: wildcard in {field}"
            assert not rule.get("nonResourceURLs"), name
            assert not rule.get("resourceNames"), name  # not needed: pods have run-time names
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.setdefault((group, resource), set()).update(rule["verbs"])
        assert not any(r in {"secrets", "configmaps"} for _, r in granted), f"{name}: {granted}"
        assert granted == EXPECTED_RULES[name], f"{name}: {granted}"
    for binding in (doc for doc in platform.docs if doc["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role", binding["metadata"]["name"]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert subject.get("namespace", "forest") == "forest"


# --- network -------------------------------------------------------------------------------


# Components whose port is open to any source, and why (docs/RELIABILITY.md lists them). The
# Airflow api-server was one until its policy admitted only the task pods (issue 21).
OPEN_TO_ANY_SOURCE = {
    "inference": "the public prediction service and web page",
}


def selected(labels: dict[str, str], policy: dict[str, Any]) -> bool:
    selector = policy["spec"]["podSelector"]
    return dict(selector.get("matchLabels", {})).items() <= labels.items()


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj["kind"] == "Pod":
        return dict(obj["metadata"].get("labels", {}))
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
    return dict(obj["spec"]["template"]["metadata"]["labels"])


def test_every_pod_is_behind_an_ingress_network_policy(platform: Platform) -> None:
    """On by default and in values-kind.yaml; the retraining pods are under k8s/'s policy."""
    policies = [doc for doc in platform.everything if doc["kind"] == "NetworkPolicy"]
    assert policies, platform.name
    for obj in workloads(platform.everything):
        labels = pod_labels(obj)
        matching = [
            p
            for p in policies
            if selected(labels, p) and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        ]
        assert matching, f"{platform.name}: {obj['kind']}/{obj['metadata']['name']} is open"
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            # A rule open to every source must name its ports, and only the components meant
            # to be reached from outside the namespace have one.
            if not rule.get("from"):
                assert rule.get("ports"), policy["metadata"]["name"]
                component = policy["spec"]["podSelector"]["matchLabels"].get(
                    "app.kubernetes.io/component"
                )
                assert component in OPEN_TO_ANY_SOURCE, policy["metadata"]["name"]


def test_every_pod_is_under_the_release_default_deny_egress(platform: Platform) -> None:
    """Egress is denied to every pod (Airflow's task pods and the retraining Job included) but
    for DNS and the flows of egress policies keyed on its labels
    (tests/charts/test_network_flows.py checks each flow); no egress rule is open to every
    destination on every port."""
    policies = [doc for doc in platform.everything if doc["kind"] == "NetworkPolicy"]
    (default,) = [p for p in policies if p["metadata"]["name"].endswith("-default-egress")]
    release = default["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"]
    for obj in workloads(platform.everything):
        labels = pod_labels(obj)
        if any(obj is k8s_obj for k8s_obj in platform.k8s):
            # k8s/ names its release in k8s/base/release.yaml (forest-mlops), these renders
            # theirs `fm`: the Job's pods carry the instance label kustomize sets.
            assert "app.kubernetes.io/instance" in labels, obj["metadata"]["name"]
            labels = labels | {"app.kubernetes.io/instance": release}
        assert selected(labels, default), f"{platform.name}: {obj['metadata']['name']}"
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to") and rule.get("ports"), policy["metadata"]["name"]


def test_network_policies_are_on_in_the_kind_values() -> None:
    values = yaml.safe_load((REPO_ROOT / "charts/forest-mlops/values-kind.yaml").read_text())
    assert values["networkPolicies"]["enabled"] is True


# --- state-changing endpoints ---------------------------------------------------------------


def env_of(docs: list[dict[str, Any]], workload: str, container: str) -> dict[str, Any]:
    for obj in workloads(docs):
        for owner, name, item in containers(obj):
            if owner == workload and name == container:
                return {var["name"]: var for var in item.get("env", [])}
    raise KeyError(f"{workload}/{container}")


def test_reload_is_protected_and_restart_open_unless_asked(platform: Platform) -> None:
    """The tokens reach the services only from Secrets. The HTTP side (401 without, 200 with;
    restart open with no token) is tested against real processes in
    tests/inference/test_api.py::test_reload_needs_the_token and
    tests/api_data/test_contract.py::test_corrupt_state_is_moved_aside_and_restart_needs_the_token
    / ::test_restart_puts_the_group_back_to_batch_0."""
    inference = env_of(platform.docs, "fm-inference", "inference")
    assert "secretKeyRef" in inference["INFERENCE_RELOAD_TOKEN"]["valueFrom"]
    api_data = env_of(platform.docs, "fm-api-data", "api-data")
    if platform.name == "all-options":
        assert "secretKeyRef" in api_data["API_DATA_RESTART_TOKEN"]["valueFrom"]
    else:
        assert "API_DATA_RESTART_TOKEN" not in api_data  # the course API's behaviour


# --- images ----------------------------------------------------------------------------------


def test_images_carry_no_credentials_and_run_as_a_user() -> None:
    for path in REPO_ROOT.glob("images/*/Dockerfile"):
        text = path.read_text()
        for line in text.splitlines():
            if re.match(r"\s*(ENV|ARG)\b", line):
                assert not SECRET_NAME.search(line.split("=")[0]), f"{path}: {line}"
        users = re.findall(r"^USER\s+(\S+)", text, re.M)
        assert users and users[-1].split(":")[0] not in {"root", "0"}, path
