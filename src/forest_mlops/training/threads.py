"""A bound on the native thread pools (OpenMP, BLAS) while models fit and predict.

HistGradientBoosting parallelises with OpenMP over every CPU it sees, and synchronises its
threads many times per tree. When the process gets less CPU than that (a pod's CPU limit, a
busy CI machine), threads wait on each other at every barrier: on a loaded 2-core machine a
fit measured 0.7 s with one thread and 178 s with two. The forests use joblib (n_jobs), which
is bounded separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


@contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    with threadpool_limits(limits=threads):
        yield
