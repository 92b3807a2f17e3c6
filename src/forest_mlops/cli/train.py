"""`forest-mlops train`: the training run without Airflow (the retraining Job's command).

Runs prepare → train → evaluate → register and promote in this process, then prints the
candidates' metrics, the winner and the promotion decision. Exit codes: 0 trained (whether or
not the champion moved); 1 the run failed (MLflow down, too little data, ...); 2 bad
configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train candidates on the training table, log them to MLflow, register the winner",
        description="Read forest_cover_data, fit the profile's candidate pipelines, log them to "
        "MLflow, register the winner (alias challenger) and promote it to champion when it "
        "beats the current champion on the current test rows. Flags override the environment.",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the training data (default: $FOREST_DATABASE_URL)",
    )
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking server (default: $MLFLOW_TRACKING_URI)"
    )
    parser.add_argument(
        "--model-name", help="registered model (default: $FOREST_MODEL_NAME, forest-cover-type)"
    )
    parser.add_argument(
        "--experiment-name",
        help="MLflow experiment (default: $FOREST_EXPERIMENT_NAME, forest-cover-type)",
    )
    parser.add_argument(
        "--profile",
        choices=("quick", "full"),
        help="candidate search: full (benchmarked) or quick (default: $FOREST_TRAINING_PROFILE, "
        "full)",
    )
    parser.add_argument(
        "--promotion-margin",
        type=float,
        help="macro-F1 a new version must beat the champion by (default: "
        "$FOREST_PROMOTION_MARGIN, 0)",
    )
    parser.add_argument(
        "--synthetic",
        action="store_const",
        const=True,
        help="tag the runs data.synthetic=true (default: $FOREST_DATA_SYNTHETIC)",
    )
    parser.set_defaults(handler=run)


# Settings field -> the attribute of its flag; a flag left out falls back to the environment.
_FLAG_FIELDS = {
    "database_url": "database_url",
    "tracking_uri": "tracking_uri",
    "model_name": "model_name",
    "experiment_name": "experiment_name",
    "profile": "profile",
    "promotion_margin": "promotion_margin",
    "data_synthetic": "synthetic",
}


def _summary(outcome: Any) -> str:
    lines = [
        f"MLflow run {outcome.context.parent_run_id}: {outcome.context.snapshot.rows} rows, "
        f"data hash {outcome.context.snapshot.data_hash[:12]}",
        f"{'candidate':<58} {'val acc':>8} {'val F1':>8} {'test acc':>8} {'test F1':>8} "
        f"{'fit s':>7}",
    ]
    for c in outcome.candidates:
        lines.append(
            f"{c['name']:<58} {c['validation_accuracy']:>8.4f} {c['validation_macro_f1']:>8.4f} "
            f"{c['test_accuracy']:>8.4f} {c['test_macro_f1']:>8.4f} {c['fit_seconds']:>7.1f}"
        )
    lines.append(f"winner: {outcome.winner['name']} (run {outcome.winner['run_id']})")
    lines.append(f"registry: {outcome.decision.summary()}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from forest_mlops.cli._settings import from_flags
    from forest_mlops.training.settings import TrainingSettings

    settings = from_flags(TrainingSettings, args, _FLAG_FIELDS, command="train")
    if settings is None:
        return 2

    from forest_mlops.training import workflow

    try:
        outcome = workflow.run_all(settings, trigger="cli")
    except Exception as exc:
        log.error("training failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        sys.stderr.write(f"forest-mlops train: failed: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write(_summary(outcome) + "\n")
    return 0
