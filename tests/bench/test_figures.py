"""The docs quote benchmark figures only as bench/results/*.json says (`make figures`)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench import figures

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_doc_agrees_with_the_results() -> None:
    result = figures.load_results()
    stale = {
        doc: figures.stale_blocks((REPO_ROOT / doc).read_text(), result) for doc in figures.DOCS
    }
    assert stale == {doc: [] for doc in figures.DOCS}, "run `make figures`"
    assert figures.main(["--check"]) == 0


def test_every_figure_is_quoted_somewhere() -> None:
    assert set(figures.used_blocks()) == set(figures.FIGURES)


def test_a_figure_edited_by_hand_is_caught() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    requests_per_s = f"{figures.load_results()('load_api_data')['requests_per_s']:.1f} req/s"
    assert text.count(requests_per_s) == 1, "the figure to tamper with must be in the README"
    tampered = text.replace(requests_per_s, "999.9 req/s")
    assert figures.stale_blocks(tampered, figures.load_results()) == ["readme-table"]


def test_a_new_result_makes_the_docs_stale(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(figures.RESULTS, results)
    inference = json.loads((results / "inference.json").read_text())
    inference["results"][0]["requests_per_s"] += 100
    (results / "inference.json").write_text(json.dumps(inference))
    newer = figures.load_results(results)
    assert figures.stale_blocks((REPO_ROOT / "README.md").read_text(), newer) == ["readme-table"]
    readme = (REPO_ROOT / "inference" / "README.md").read_text()
    assert figures.stale_blocks(readme, newer) == ["inference-performance"]


def test_an_unknown_block_is_an_error() -> None:
    with pytest.raises(figures.FiguresError, match="unknown figures block 'nope'"):
        figures.render("<!-- figures:nope -->\nx\n<!-- /figures -->", figures.load_results())


def test_synthetic_figures_and_unshipped_models_say_so() -> None:
    table = figures.readme_table(figures.load_results())
    for row in table.splitlines():
        if "581k" in row:
            assert "**SYNTHETIC**" in row
        if row.startswith("| inference") and "model:" in row:
            assert "champion `forest-mlops train`" in row


def test_the_stale_hand_written_figures_are_gone() -> None:
    docs = {doc: (REPO_ROOT / doc).read_text() for doc in figures.DOCS}
    for old in ("p50 85 ms", "p99 196 ms", "126.8 req/s", "| 201 |", "7.6x", "340 MB", "0.9 s p50"):
        assert not [doc for doc, text in docs.items() if old in text], old
    assert not re.search(r"\b1 GB\b", (REPO_ROOT / "bench" / "demo.py").read_text())


def test_the_cold_cache_download_is_summed_from_the_lock() -> None:
    size = figures.download_bytes()
    # numpy, scipy, pandas, scikit-learn, mlflow, airflow...: hundreds of MB, not a few or GBs.
    assert 200e6 < size < 1.5e9
    assert f"about {round(size / 1e6, -1):.0f} MB" in (REPO_ROOT / "README.md").read_text()


def test_the_chaos_sentence_claims_only_what_the_e2e_asserted() -> None:
    """tests/e2e records `proven` only after its fault check's asserts; a result without it
    (as every one before that check) never says "no row lost"."""
    unproven = {
        "scheduler_pod_deleted": "forest-mlops-airflow-scheduler-1",
        "scheduler_deleted_after_batches": 2,
        "task_pod_deleted": {"pod": "p", "run_id": "r", "task": "load"},
    }
    assert "no row lost" not in figures.chaos_sentence(unproven)
    assert "checked neither" in figures.chaos_sentence(unproven)
    proven = {
        "scheduler_pod_deleted": "forest-mlops-airflow-scheduler-1",
        "scheduler_deleted_after_batches": 2,
        "task_pod_killed": {
            "task": "load", "batches": [6], "killed_try": 1, "final_try": 2, "loads_per_batch": 1,
        },
        "rows_in_table": 11547,
        "rows_served_distinct": 11547,
        "proven": True,
    }  # fmt: skip
    sentence = figures.chaos_sentence(proven)
    assert "(batch 6)" in sentence and "try 1 to 2" in sentence
    assert sentence.endswith("the 11,547 distinct rows the data API says it served: no row lost")
