"""Run every benchmark in bench/ in turn: `python -m bench [name ...]`.

Each benchmark module has a `main()` that prints its table and writes bench/results/<name>.json;
the README quotes those figures.
"""

from __future__ import annotations

import importlib
import pkgutil
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
    for name in names:
        print(f"\n=== bench/{name}.py")
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"(bench/{name}.py took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
