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


def load_cluster_record(failures: int = 0) -> dict[str, object]:
    """A record as `make load` writes it (summary.result plus run_load's and the CLI's keys)."""
    from forest_mlops.load import summary

    line = summary.summary_line(
        {
            "target_rate_per_s": 20.0, "users": 20, "requests": 1190, "failures": failures,
            "p50_ms": 14, "p95_ms": 31, "p99_ms": 58, "max_ms": 120.4, "started_at": 1796486700.0,
            "ended_at": 1796486759.5,
            "errors": [{"error": "POST /predict: HTTP 503", "occurrences": failures}]
            if failures else [],
        }
    )  # fmt: skip
    record = summary.result(
        summary.parse_log(line), namespace="forest-mlops", release="forest-mlops",
        job="forest-mlops-load-1", job_outcome="Complete", image="i", duration_s=60,
    )  # fmt: skip
    return record | {"context": "kind-forest-mlops", "measured_on": "2026-12-05", "cpu_count": 2}


def test_no_load_cluster_result_is_said_not_invented(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(figures.RESULTS, results)
    (results / "load-cluster.json").unlink(missing_ok=True)
    text = figures.readme_load_cluster(figures.load_results(results))
    assert text.startswith("No in-cluster load result yet")
    assert not re.search(r"\d", text.replace("load-cluster.json", ""))


def test_a_load_cluster_result_is_quoted_and_makes_the_readme_stale(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(figures.RESULTS, results)
    (results / "load-cluster.json").write_text(json.dumps(load_cluster_record()))
    newer = figures.load_results(results)
    text = figures.readme_load_cluster(newer)
    assert "| 20 req/s | 20.0 req/s | 1,190 | 0 | 14 ms | 31 ms | 58 ms | 120 ms |" in text
    assert "context `kind-forest-mlops`" in text and "Failures" not in text
    readme = (REPO_ROOT / "README.md").read_text()
    assert "readme-load-cluster" in figures.stale_blocks(readme, newer)


def test_the_services_own_p99_is_quoted_when_make_load_read_it(tmp_path: Path) -> None:
    from forest_mlops.load import served

    record = load_cluster_record()
    prometheus = {"requests": 1190, "rate_per_s": 20.0, "p99_ms": 55.1}
    results = tmp_path / "results"
    results.mkdir()
    seen = served.comparison(record, prometheus)
    (results / "load-cluster.json").write_text(json.dumps(record | {"vs_prometheus": seen}))
    text = figures.readme_load_cluster(figures.load_results(results))
    assert "from Prometheus: 1,190 requests, p99 55.1 ms (5 % off Locust's;" in text
    record["vs_prometheus"] = None
    (results / "load-cluster.json").write_text(json.dumps(record))
    assert "Prometheus" not in figures.readme_load_cluster(figures.load_results(results))


def test_load_cluster_failures_are_named(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "load-cluster.json").write_text(json.dumps(load_cluster_record(failures=7)))
    text = figures.readme_load_cluster(figures.load_results(results))
    assert "| 7 |" in text and "Failures: POST /predict: HTTP 503 x7." in text
