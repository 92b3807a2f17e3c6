"""The bounded search: quick profile end to end on DataFrames, winner choice, data checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from forest_mlops import schema
from forest_mlops.training import evaluate, pipelines, search, split
from forest_mlops.training.pipelines import CandidateSpec
from forest_mlops.training.threads import limited_threads


@pytest.fixture(scope="module")
def quick_results(labelled_rows: pd.DataFrame) -> list[search.CandidateResult]:
    parts = split.split_frame(labelled_rows)
    return search.run_search(parts, search.profile("quick"), n_jobs=1)


def test_quick_profile_trains_every_family(quick_results: list[search.CandidateResult]) -> None:
    assert {r.spec.family for r in quick_results} == set(pipelines.FAMILIES)
    for result in quick_results:
        assert result.fit_seconds > 0
        assert 0.5 < result.validation.accuracy <= 1.0, result.name
        assert result.test.confusion.sum() == result.test.rows
    winner = search.select_winner(quick_results)
    assert winner.validation.macro_f1 == max(r.validation.macro_f1 for r in quick_results)


def test_every_profile_candidate_builds() -> None:
    for name in search.PROFILE_NAMES:
        for spec in search.profile(name):
            pipelines.build_pipeline(spec)
    # Every family is trained somewhere; the full profile serves only compiled forests, which
    # the serving budget chooses among (issue 16).
    assert {s.family for n in search.PROFILE_NAMES for s in search.profile(n)} == set(
        pipelines.FAMILIES
    )
    assert {s.serving for s in search.profile("full")} == {pipelines.SERVE_ONNX}
    with pytest.raises(ValueError, match="unknown training profile 'huge'"):
        search.profile("huge")


def test_ties_go_to_accuracy_then_to_the_earlier_candidate(
    quick_results: list[search.CandidateResult],
) -> None:
    base = quick_results[0]

    def scored(name: str, f1: float, accuracy: float) -> search.CandidateResult:
        scores = evaluate.Scores(accuracy, f1, {}, np.zeros((7, 7)), 1)
        return search.CandidateResult(CandidateSpec(name), None, 1.0, scores, base.test)

    a, b, c = scored("a", 0.8, 0.90), scored("b", 0.8, 0.91), scored("c", 0.8, 0.91)
    assert search.select_winner([a, b, c]).spec.family == "b"


def test_too_few_rows_is_refused(labelled_rows: pd.DataFrame) -> None:
    with pytest.raises(search.NotEnoughData, match="too few rows to train"):
        search.run_search(split.split_frame(labelled_rows.head(40)), search.profile("quick"))


def test_scores_and_figures(
    quick_results: list[search.CandidateResult], labelled_rows: pd.DataFrame, tmp_path
) -> None:
    truth = np.array([0, 1, 1, 2])
    scores = evaluate.score_predictions(truth, np.array([0, 1, 2, 2]))
    assert scores.accuracy == 0.75
    assert scores.per_class_f1[0] == 1.0
    assert scores.per_class_f1[6] == 0.0  # absent class: 0 in the table, not in the macro
    assert scores.macro_f1 == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)
    assert scores.confusion[1, 2] == 1
    assert "test_f1_class_3" in scores.as_metrics("test")

    path = tmp_path / "cm.png"
    evaluate.confusion_figure(quick_results[0].test, "cm").savefig(path)
    assert Image.open(path).size[0] > 300

    validation = split.split_frame(labelled_rows).validation
    for result in quick_results:
        with limited_threads(1):
            importances, method = evaluate.feature_importances(result.pipeline, validation)
        expected = "permutation" if result.spec.family == "hist_gradient_boosting" else "impurity"
        assert method == expected
        assert set(schema.FEATURE_COLUMNS) <= set(importances)
        assert max(importances.values()) > 0
