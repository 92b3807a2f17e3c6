"""values.yaml against values.schema.json, its `# --` comments, and bad values refused with a
clear message by the schema (types, unknown keys, `latest`) or by templates/check-values.yaml
(combinations of keys)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.charts.conftest import KIND_VALUES
from tests.support.helm import CHART_DIR, HelmError, render_chart

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
VALUES_TEXT = (CHART_DIR / "values.yaml").read_text()


def leaf_keys(tree: Any, prefix: str = "") -> list[str]:
    if isinstance(tree, dict) and tree:
        return [key for name, sub in tree.items() for key in leaf_keys(sub, f"{prefix}{name}.")]
    return [prefix.rstrip(".")]


def objects(schema: dict[str, Any], path: str = "$"):
    """Every object schema in the document, with its path."""
    if schema.get("type") == "object":
        yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from objects(sub, f"{path}.{name}")
    for name, sub in schema.get("$defs", {}).items():
        yield from objects(sub, f"$defs.{name}")


class TestSchema:
    @pytest.mark.parametrize("path", [CHART_DIR / "values.yaml", KIND_VALUES], ids=lambda p: p.name)
    def test_values_files_validate(self, path):
        values = yaml.safe_load(path.read_text())
        if path == KIND_VALUES:  # an overlay: validate it merged over the defaults
            values = merge(yaml.safe_load(VALUES_TEXT), values)
        jsonschema.Draft7Validator(SCHEMA).validate(values)

    def test_every_object_refuses_unknown_keys(self):
        # Airflow's keys are its own subchart's schema's business; `global` is Helm's.
        open_objects = [
            path
            for path, schema in objects(SCHEMA)
            if schema.get("additionalProperties") is not False
        ]
        assert all(path in ("$.airflow",) or path.endswith(".global") for path in open_objects), (
            open_objects
        )

    def test_every_values_key_has_a_description_comment(self):
        values = yaml.safe_load(VALUES_TEXT)
        lines = VALUES_TEXT.splitlines()
        # A `# --` line documents its key and, as in helm-docs, the whole value below it
        # (resources, securityContext): those keys are Kubernetes', not ours.
        stack: list[tuple[int, str, bool]] = []
        undocumented = []
        for index, line in enumerate(lines):
            match = re.match(r"^(\s*)([\w-]+):", line)
            if not match:
                continue
            indent = len(match.group(1))
            commented = lines[index - 1].strip().startswith("# -- ")
            stack = [entry for entry in stack if entry[0] < indent]
            stack.append((indent, match.group(2), commented or any(e[2] for e in stack)))
            node: Any = values
            for _, key, _ in stack:
                if isinstance(node, list):
                    break  # a key of a list's item: documented with the list, as in helm-docs
                node = node[key]
            is_parent = isinstance(node, dict) and bool(node)
            if not is_parent and not stack[-1][2]:
                undocumented.append(".".join(key for _, key, _ in stack))
        assert undocumented == []
        assert len(leaf_keys(values)) > 80


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values)
    return str(excinfo.value)


class TestSchemaRefusesBadValues:
    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"mlflow": {"image": {"tag": "latest"}}}, "at '/mlflow/image/tag'"),
            ({"inference": {"image": {"tag": ""}}}, "at '/inference/image/tag'"),
            ({"mysql": {"pasword": "x"}}, "additional properties 'pasword' not allowed"),
            ({"minio": {"buckets": ["Bad_Bucket"]}}, "at '/minio/buckets/0'"),
            ({"api-data": {"sampleFraction": 2}}, "at '/api-data/sampleFraction'"),
            ({"inference": {"autoscaling": {"targetCPUUtilizationPercentage": 0}}}, "targetCPU"),
            (
                {"mysql": {"resources": {"limits": {"cpu": "lots"}}}},
                "at '/mysql/resources/limits/cpu'",
            ),
            ({"networkPolicies": {"enabled": "yes"}}, "at '/networkPolicies/enabled'"),
        ],
    )
    def test_refused(self, values, message):
        assert message in render_error(values)


class TestCheckValues:
    @pytest.mark.parametrize(
        ("values", "message"),
        [
            (
                {"mysql": {"enabled": False}},
                "mlflow.enabled needs a database: enable mysql, or set mlflow.database.host",
            ),
            (
                {"mysql": {"auth": {"existingSecret": "corp-mysql"}}},
                'mysql.auth.existingSecret is "corp-mysql", so there is no generated Secret '
                "fm-mysql: set mlflow.database.existingSecret",
            ),
            (
                {"mlflow": {"database": {"host": "db.example.org"}}},
                "mlflow.database.host points at your own server: "
                "set mlflow.database.existingSecret",
            ),
            (
                {"minio": {"enabled": False}},
                "mlflow.enabled needs an artifact store: enable minio",
            ),
            (
                {"minio": {"auth": {"existingSecret": "corp-s3"}}},
                "set mlflow.artifacts.existingSecret",
            ),
            (
                {"mlflow": {"artifacts": {"bucket": "models"}}},
                'mlflow.artifacts.bucket "models" is not in minio.buckets',
            ),
            (
                {"mlflow": {"enabled": False}},
                "inference.enabled needs a model registry: enable mlflow, or set "
                "platform.mlflowTrackingUri",
            ),
            (
                {
                    "mysql": {"auth": {"existingSecret": "corp-mysql"}},
                    "mlflow": {"database": {"existingSecret": "corp-mysql"}},
                },
                "set inference.predictionLog.existingSecret",
            ),
            (
                {"inference": {"autoscaling": {"enabled": True, "minReplicas": 4}}},
                "inference.autoscaling.minReplicas (4) is greater than maxReplicas (3)",
            ),
        ],
    )
    def test_bad_combination_fails_with_a_clear_message(self, values, message):
        assert message in render_error(values)

    def test_long_release_name_is_refused(self):
        with pytest.raises(HelmError, match="at most 40"):
            render_chart(release="r" * 41)

    def test_consistent_existing_secrets_render(self):
        docs = render_chart(
            {
                "airflow": {"enabled": False},
                "mysql": {"auth": {"existingSecret": "corp-mysql"}},
                "mlflow": {"database": {"existingSecret": "corp-mysql"}},
                "inference": {"predictionLog": {"existingSecret": "corp-mysql"}},
            }
        )
        assert "fm-mysql" not in {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}


def test_readme_values_table_lists_every_documented_key():
    readme = (CHART_DIR / "README.md").read_text().partition("\n## Values\n")[2]
    listed = set(re.findall(r"^\| `([\w.-]+)` \|", readme, re.M))
    lines = VALUES_TEXT.splitlines()
    documented = set()
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)([\w-]+):", line)
        if not match:
            continue
        indent = len(match.group(1))
        stack = [entry for entry in stack if entry[0] < indent] + [(indent, match.group(2))]
        if lines[index - 1].strip().startswith("# -- "):
            documented.add(".".join(key for _, key in stack))
    assert documented - listed == set(), "README values table is missing keys"
    assert listed - documented == set(), "README values table lists keys values.yaml lacks"


def test_no_credential_has_a_default():
    """Keys that could hold a credential default to empty (generated or from a Secret); the
    `*Key` keys only name a key inside a Secret."""

    def walk(tree: Any, path: str = ""):
        for name, value in tree.items():
            if isinstance(value, dict):
                yield from walk(value, f"{path}{name}.")
            else:
                yield f"{path}{name}", name, value

    for path, name, value in walk(yaml.safe_load(VALUES_TEXT)):
        if re.search(r"password|secret|token|credential", name, re.I) and not name.endswith("Key"):
            assert value in ("", None, False, True), f"{path} has a default: {value!r}"
