"""Run every benchmark in bench/ in turn: `python -m bench [name ...]`.

Each benchmark module has a `main()` that prints its table and writes bench/results/<name>.json;
the README quotes those figures. Each runs in its own process: MLflow, Airflow and OpenMP keep
process-wide state (tracking/registry URIs, thread pools) that one benchmark must not hand to the
next.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def benchmark_names() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or benchmark_names()
    unknown = sorted(set(names) - set(benchmark_names()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(benchmark_names())}")
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench/{name}.py", flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode
        print(f"(bench/{name}.py took {time.perf_counter() - started:.0f} s, exit {code})")
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
