"""The search's one definition: the candidates of each profile, by family, without scikit-learn.

Everything that runs a search reads it from here: the training DAG at parse time (one mapped
task per family, one task instance per candidate; importing scikit-learn there would slow every
parse of the DAG file), `forest-mlops train` and the retraining Job (in one process,
workflow.run_all), and `make demo` (the DAG under dag.test()). A candidate travels between
processes by name (`CandidateSpec.name`), which `by_name` turns back into the spec.

The `full` profile compares three families, each compiled to ONNX (the forests by
forest_mlops.serving.compiled, HistGradientBoosting by forest_mlops.serving.boosting) so that it
can serve within the budget (artifact <= 30 MB, 1,000 records <= 30 ms of CPU): as sklearn
pipelines the forests are 100+ MB and the boosting ~90 ms. Sizes come from measurements on the
75k dev sample (bench/training.py records each candidate's accuracy, time and serving cost).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

RANDOM_FOREST: Final = "random_forest"
EXTRA_TREES: Final = "extra_trees"
HIST_GRADIENT_BOOSTING: Final = "hist_gradient_boosting"
FAMILIES: Final[tuple[str, ...]] = (RANDOM_FOREST, EXTRA_TREES, HIST_GRADIENT_BOOSTING)

# How a candidate is logged and served: the fitted sklearn pipeline, or its trees compiled to
# an ONNX tree ensemble (forest_mlops.serving.compiled for the forests, .boosting for
# HistGradientBoosting).
SERVE_SKLEARN: Final = "sklearn"
SERVE_ONNX: Final = "onnx"
SERVING_FORMS: Final = (SERVE_SKLEARN, SERVE_ONNX)


@dataclass(frozen=True)
class CandidateSpec:
    """One point of the search: a family and the estimator's hyperparameters."""

    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    serving: str = SERVE_SKLEARN

    def __post_init__(self) -> None:
        if self.serving not in SERVING_FORMS:
            raise ValueError(f"unknown serving form {self.serving!r} (expected {SERVING_FORMS})")

    @property
    def name(self) -> str:
        """A short, stable run name, e.g. `extra_trees-max_features=0.5-n_estimators=150-onnx`."""
        parts = [f"{key}={self.params[key]}" for key in sorted(self.params)]
        suffix = [self.serving] if self.serving != SERVE_SKLEARN else []
        return "-".join([self.family, *parts, *suffix])


PROFILES: Final[dict[str, tuple[CandidateSpec, ...]]] = {
    "full": (
        # Unbounded ExtraTrees fit this low-noise data best (min_samples_leaf=2 or a leaf cap
        # cost about a point of accuracy on the 75k sample), compiled for serving (ONNX): the
        # same classes as the sklearn pipeline at a tenth of the size. The tree count sets size
        # and latency, and the serving budget picks among them (on the 75k sample 40 trees are
        # 10 MB and ~35 ms of CPU per 1,000 records, 30 trees 7.5 MB / ~28 ms).
        CandidateSpec(EXTRA_TREES, {"n_estimators": 40, "max_features": 0.5}, SERVE_ONNX),
        CandidateSpec(EXTRA_TREES, {"n_estimators": 30, "max_features": 0.5}, SERVE_ONNX),
        CandidateSpec(EXTRA_TREES, {"n_estimators": 24, "max_features": 0.5}, SERVE_ONNX),
        # RandomForest's trees are smaller than ExtraTrees' (best splits, not random ones):
        # 40 trees compiled are ~5 MB and ~10 ms per 1,000 records, at about 0.925 accuracy.
        CandidateSpec(RANDOM_FOREST, {"n_estimators": 60, "max_features": 0.3}, SERVE_ONNX),
        CandidateSpec(RANDOM_FOREST, {"n_estimators": 40}, SERVE_ONNX),
        # Boosting compiled too (forest_mlops.serving.boosting; categories one-hot): ONNX
        # Runtime walks 7 trees a round, so the round count sets latency. Measured on the 75k
        # sample: 200 rounds of 63 leaves 0.927 accuracy but 54 ms of CPU per 1,000 records
        # compiled (87 ms as sklearn), 120 rounds of 127 leaves 0.930 / 43 ms: over budget.
        CandidateSpec(
            HIST_GRADIENT_BOOSTING,
            {
                "learning_rate": 0.25,
                "max_iter": 70,
                "max_leaf_nodes": 127,
                "l2_regularization": 1.0,
            },
            SERVE_ONNX,
        ),
    ),
    "quick": (
        CandidateSpec(HIST_GRADIENT_BOOSTING, {"max_iter": 30, "max_leaf_nodes": 15}),
        # Unbounded, as the full profile's: depth-capped trees have impure leaves, which the
        # compiled form refuses (it would be logged as sklearn instead).
        CandidateSpec(EXTRA_TREES, {"n_estimators": 20}, SERVE_ONNX),
        CandidateSpec(RANDOM_FOREST, {"n_estimators": 20, "max_depth": 12}),
    ),
}
PROFILE_NAMES: Final = tuple(PROFILES)


def profile(name: str) -> tuple[CandidateSpec, ...]:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown training profile {name!r} (expected one of {', '.join(PROFILE_NAMES)})"
        ) from None


def by_family(specs: Iterable[CandidateSpec]) -> dict[str, list[str]]:
    """Candidate names per family, families in FAMILIES order, candidates in profile order."""
    names: dict[str, list[str]] = {}
    for family in FAMILIES:
        members = [s.name for s in specs if s.family == family]
        if members:
            names[family] = members
    return names


def by_name(name: str, specs: Iterable[CandidateSpec] | None = None) -> CandidateSpec:
    """The spec called `name` among `specs` (default: every profile's)."""
    pool = list(specs) if specs is not None else [s for p in PROFILES.values() for s in p]
    for spec in pool:
        if spec.name == name:
            return spec
    raise ValueError(f"no candidate called {name!r}")
