"""Every document the platform deploys parses under a strict YAML reading (issue 14, defect 1).

Helm and PyPI's yaml.safe_load keep the last of two equal mapping keys without a word; skaffold's
post-renderer and `kubectl kustomize` (Go yaml v3) refuse the document (`mapping key "data"
already defined`), so a duplicate key that the other tests never see stops `skaffold run`. Here a
loader that raises on any repeated key reads every document of every values file of the chart
(Airflow on), the YAML embedded in ConfigMaps (the KubernetesExecutor's pod template), the
kustomize builds of k8s/ and skaffold.yaml itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.platform.conftest import K8S_DIR, kustomize_build
from tests.support.helm import CHART_DIR, REPO_ROOT, render_manifest

VALUE_FILES = sorted(CHART_DIR.glob("values*.yaml"))
KUSTOMIZATIONS = sorted(p.parent for p in K8S_DIR.rglob("kustomization.yaml"))


class DuplicateKeyError(yaml.MarkedYAMLError):
    pass


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (merge keys `<<` aside)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def strict_load_all(text: str, origin: str) -> list[Any]:
    """All documents of a stream; a duplicate key anywhere fails with the source named."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=StrictLoader) if doc is not None]
    except DuplicateKeyError as exc:
        pytest.fail(f"{origin}: {exc}")


def embedded_yaml(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, text) of each .yaml/.yml entry of a ConfigMap's data."""
    if doc.get("kind") == "ConfigMap":
        for key, value in (doc.get("data") or {}).items():
            if key.endswith((".yaml", ".yml")):
                yield key, value


def test_the_strict_loader_refuses_a_duplicate_key() -> None:
    with pytest.raises(DuplicateKeyError, match="duplicate key 'data'"):
        list(yaml.load_all("kind: ConfigMap\ndata: {}\ndata: {a: b}\n", Loader=StrictLoader))
    # and keeps what a plain loader keeps otherwise
    assert strict_load_all("a: 1\nb: {c: 2}\n", "inline") == [{"a": 1, "b": {"c": 2}}]


@pytest.mark.parametrize(
    "values_file", [None, *VALUE_FILES], ids=lambda p: p.name if p else "defaults"
)
def test_every_rendered_document_has_unique_keys(values_file: Path | None) -> None:
    files = [values_file] if values_file else []
    name = values_file.name if values_file else "chart defaults"
    docs = strict_load_all(render_manifest(value_files=files), f"helm template ({name})")
    assert len(docs) > 20, f"suspiciously few documents: {len(docs)}"
    embedded = 0
    for doc in docs:
        for key, text in embedded_yaml(doc):
            strict_load_all(text, f"{doc['kind']}/{doc['metadata']['name']} data.{key}")
            embedded += 1
    assert embedded >= 1, "the Airflow pod template ConfigMap was not checked"


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_kustomize_builds_have_unique_keys(path: Path) -> None:
    docs = strict_load_all(
        kustomize_build(path), f"kubectl kustomize {path.relative_to(REPO_ROOT)}"
    )
    assert docs


def test_skaffold_config_has_unique_keys() -> None:
    path = REPO_ROOT / "skaffold.yaml"
    assert strict_load_all(path.read_text(), path.name)
