"""Trees into one ONNX `TreeEnsemble` node (ai.onnx.ml opset 5): the part the forests' and the
boosted trees' compiled forms share (forest_mlops.serving.compiled, .boosting).

Each caller hands over its trees as arrays over the tree's nodes (which are leaves, the
children, the split feature and threshold) and, per leaf, the target (class) it adds to and the
weight it adds; this module numbers interior nodes and leaves tree after tree, as the operator
wants, and writes the graph `X -> output` with SUM aggregation and no post-transform.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

ML_DOMAIN: Final = "ai.onnx.ml"


class TreeEnsembleBuilder:
    """Collects trees, then `to_onnx` serialises them as one TreeEnsemble node."""

    def __init__(self, dtype: type[np.floating[Any]]) -> None:
        # float32 for the forests (their matrix), float64 for boosting (sklearn compares doubles).
        self.dtype = dtype
        self._columns: dict[str, list[np.ndarray[Any, Any]]] = {
            k: [] for k in ("feature", "split", "true", "false", "true_leaf", "false_leaf")
        }
        self._targets: list[np.ndarray[Any, Any]] = []
        self._weights: list[np.ndarray[Any, Any]] = []
        self._roots: list[int] = []
        self._nodes = self._leaves = 0

    def add_tree(
        self,
        *,
        is_leaf: np.ndarray[Any, Any],
        left: np.ndarray[Any, Any],
        right: np.ndarray[Any, Any],
        feature: np.ndarray[Any, Any],
        threshold: np.ndarray[Any, Any],
        leaf_targets: np.ndarray[Any, Any],
        leaf_weights: np.ndarray[Any, Any],
    ) -> None:
        """One tree, node 0 its root: arrays over its nodes, then one target/weight per leaf
        in node order. A split sends `x[feature] <= threshold` to `left`."""
        columns = self._columns
        index = np.empty(len(is_leaf), dtype=np.int64)
        index[~is_leaf] = self._nodes + np.arange(int((~is_leaf).sum()))
        index[is_leaf] = self._leaves + np.arange(int(is_leaf.sum()))
        interior = np.flatnonzero(~is_leaf)
        if interior.size == 0:  # a one-leaf tree: one node whose both branches are that leaf
            columns["feature"].append(np.zeros(1, np.int64))
            columns["split"].append(np.zeros(1, self.dtype))
            for key in ("true", "false"):
                columns[key].append(index[:1])
            for key in ("true_leaf", "false_leaf"):
                columns[key].append(np.ones(1, np.int64))
            self._roots.append(self._nodes)
            self._nodes += 1
        else:
            lefts, rights = left[interior].astype(np.int64), right[interior].astype(np.int64)
            columns["feature"].append(feature[interior].astype(np.int64))
            columns["split"].append(threshold[interior].astype(self.dtype))
            columns["true"].append(index[lefts])
            columns["false"].append(index[rights])
            columns["true_leaf"].append(is_leaf[lefts].astype(np.int64))
            columns["false_leaf"].append(is_leaf[rights].astype(np.int64))
            self._roots.append(int(index[0]))
            self._nodes += interior.size
        self._targets.append(np.asarray(leaf_targets, dtype=np.int64))
        self._weights.append(np.asarray(leaf_weights, dtype=self.dtype))
        self._leaves += int(is_leaf.sum())

    def to_onnx(
        self, *, n_features: int, n_targets: int, output: str, graph: str, producer: str
    ) -> bytes:
        from onnx import TensorProto, helper, numpy_helper

        def ints(key: str) -> list[int]:
            return [int(v) for v in np.concatenate(self._columns[key])]

        splits = np.concatenate(self._columns["split"])
        ensemble = helper.make_node(
            "TreeEnsemble",
            ["X"],
            [output],
            domain=ML_DOMAIN,
            n_targets=n_targets,
            aggregate_function=1,  # SUM
            post_transform=0,  # NONE: callers finish the scores in numpy
            tree_roots=self._roots,
            nodes_featureids=ints("feature"),
            nodes_splits=numpy_helper.from_array(splits),
            nodes_modes=numpy_helper.from_array(np.zeros(splits.size, dtype=np.uint8)),  # LEQ
            nodes_truenodeids=ints("true"),
            nodes_falsenodeids=ints("false"),
            nodes_trueleafs=ints("true_leaf"),
            nodes_falseleafs=ints("false_leaf"),
            leaf_targetids=[int(v) for v in np.concatenate(self._targets)],
            leaf_weights=numpy_helper.from_array(np.concatenate(self._weights)),
        )
        element = TensorProto.FLOAT if self.dtype == np.float32 else TensorProto.DOUBLE
        model = helper.make_model(
            helper.make_graph(
                [ensemble],
                graph,
                [helper.make_tensor_value_info("X", element, [None, n_features])],
                [helper.make_tensor_value_info(output, element, [None, n_targets])],
            ),
            opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(ML_DOMAIN, 5)],
            producer_name=producer,
        )
        model.ir_version = 10
        return bytes(model.SerializeToString())
