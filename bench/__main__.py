"""Run every benchmark in bench/ in turn: `python -m bench [name ...]`.

Each benchmark module has a `main()` that prints its table and writes bench/results/<name>.json;
`make figures` writes the README's and the docs' figures from those files. Each runs in its own
process: MLflow, Airflow and OpenMP keep process-wide state (tracking/registry URIs, thread
pools) that one benchmark must not hand to the next.

The run fails (exit 1) when a benchmark exits non-zero, writes no result, or writes one with
`"targets_met": false`: a missed target is a failure, not a line in a table.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

# Modules of bench/ that are not benchmarks here: `make figures` (writes the docs from the
# results), dev_loop, which deletes and recreates the kind cluster (`make bench-dev-loop`), and
# cluster_search, figures of `make e2e`'s training runs that bench/training.py stores, and
# load_cluster, which needs the platform deployed on the kind cluster (`make load`).
NOT_BENCHMARKS = {"figures", "dev_loop", "cluster_search", "load_cluster"}


def benchmark_names() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(here)])
        if not m.name.startswith("_") and m.name not in NOT_BENCHMARKS
    )


RESULTS = Path(__file__).parent / "results"


def verdict(name: str, code: int, started: float, results: Path = RESULTS) -> str | None:
    """Why the benchmark `name` (exit `code`, started at time.time() `started`) failed, or None."""
    if code != 0:
        return f"exit {code}"
    path = results / f"{name}.json"
    if not path.exists() or path.stat().st_mtime < started:
        return f"wrote no {path.name}"
    result = json.loads(path.read_text())
    if result.get("targets_met") is False:
        return f"missed its targets {result.get('targets')}"
    return None


def main(argv: list[str]) -> int:
    names = argv or benchmark_names()
    unknown = sorted(set(names) - set(benchmark_names()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(benchmark_names())}")
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench/{name}.py", flush=True)
        started = time.time()
        code = subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode
        print(f"(bench/{name}.py took {time.time() - started:.0f} s, exit {code})")
        reason = verdict(name, code, started)
        if reason is not None:
            failed.append(f"{name} ({reason})")
    if failed:
        print(f"FAILED: {'; '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
