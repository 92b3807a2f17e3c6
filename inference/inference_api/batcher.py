"""Adaptive micro-batching: concurrent requests share one predict_proba call.

Most of a scikit-learn pipeline's cost for a handful of rows is per call (input validation,
the ColumnTransformer, tree traversal set-up), not per row. While one batch is being predicted
in the model thread, requests that arrive queue up; when the thread is free they all go in
the next call. An idle service therefore predicts each request at once (a batch of one), and a
busy one amortises the per-call cost over every waiting request, without any timer or delay.

Each batch reads `holder.current` once, so all of its rows are answered by the same model
version even when a swap lands in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from forest_mlops import schema

from .model_holder import ModelHolder, ServedModel


class NoModelError(Exception):
    """No model is loaded yet; the message says why."""


class PredictionFailed(Exception):
    """The model raised on a request's rows (the cause is chained). It names the version that
    raised, so the request's 500 is counted against that version (the request metrics'
    model_version label): a new version that fails shows as that version's errors."""

    def __init__(self, model_version: str, cause: Exception) -> None:
        super().__init__(f"model version {model_version} failed: {cause!r}")
        self.model_version = model_version
        self.__cause__ = cause


@dataclass(frozen=True)
class Prediction:
    model: ServedModel
    probabilities: np.ndarray[Any, Any]  # (rows, 7), class id order
    model_seconds: float  # time of the predict_proba call that answered (shared by a batch)


@dataclass
class _Job:
    columns: Mapping[str, Sequence[Any]]
    n_rows: int
    future: asyncio.Future[Prediction]


class MicroBatcher:
    def __init__(
        self,
        holder: ModelHolder,
        *,
        max_rows_per_call: int = 20_000,
        max_wait_seconds: float = 0.010,
        wait_fraction: float = 0.25,
    ) -> None:
        self.holder = holder
        self.max_rows_per_call = max_rows_per_call
        self.max_wait_seconds = max_wait_seconds
        self.wait_fraction = wait_fraction
        # How many requests the last call answered and how long it took: with N clients in a
        # closed loop, the clients answered by one call come back while the next call runs,
        # so calls alternate between two half-size cohorts unless a call waits briefly for the
        # rest. A lone client never waits (last call answered one request).
        self._last_jobs = 1
        self._last_seconds = 0.0
        self._arrived = asyncio.Event()
        # One thread: calls run one at a time, so batching (not threads) gives the throughput
        # and a large batch cannot starve the event loop of cores twice over.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._pending: list[_Job] = []
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None

    async def predict(self, columns: Mapping[str, Sequence[Any]], n_rows: int) -> Prediction:
        if self.holder.current is None:
            raise NoModelError(self.no_model_reason())
        loop = asyncio.get_running_loop()
        job = _Job(columns, n_rows, loop.create_future())
        self._pending.append(job)
        self._arrived.set()
        if not self._draining:
            self._draining = True
            # Keep a reference: the loop holds tasks only weakly.
            self._drain_task = loop.create_task(self._drain())
        return await job.future

    def no_model_reason(self) -> str:
        holder = self.holder
        state = holder.state
        if state.last_status is None:
            why = "the first registry check has not finished yet"
        elif state.alias_version is None and state.last_success_monotonic is not None:
            why = f"no version of {holder.name!r} has the alias {holder.alias!r} yet"
        else:
            why = state.last_error or "the model could not be loaded"
        return f"no model is loaded: {why}"

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await self._gather()
                jobs = self._take_batch()
                model = self.holder.current
                if model is None:  # cannot happen once loaded: models are never unloaded
                    for job in jobs:
                        _settle(job, NoModelError(self.no_model_reason()))
                    continue
                try:
                    proba, seconds = await loop.run_in_executor(
                        self._executor, _predict, model, [j.columns for j in jobs]
                    )
                except Exception as exc:
                    if len(jobs) == 1:
                        _settle(jobs[0], PredictionFailed(model.version, exc))
                    else:
                        # One request's rows must not fail its neighbours: answer each alone.
                        await self._predict_each(model, jobs)
                    continue
                self._last_jobs, self._last_seconds = len(jobs), seconds
                start = 0
                for job in jobs:
                    _settle(job, Prediction(model, proba[start : start + job.n_rows], seconds))
                    start += job.n_rows
        finally:
            self._draining = False

    async def _predict_each(self, model: ServedModel, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        for job in jobs:
            try:
                proba, seconds = await loop.run_in_executor(
                    self._executor, _predict, model, [job.columns]
                )
            except Exception as exc:
                _settle(job, PredictionFailed(model.version, exc))
            else:
                _settle(job, Prediction(model, proba, seconds))

    async def _gather(self) -> None:
        """Wait a little for as many requests as the last call answered.

        The wait is bounded by a fraction of the last call's duration (and max_wait_seconds),
        so it can cost at most that share of latency, and it is skipped when enough requests
        are already queued or the last call answered a single request.
        """
        target = self._last_jobs
        budget = min(self.max_wait_seconds, self.wait_fraction * self._last_seconds)
        if len(self._pending) >= target or budget <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        while len(self._pending) < target:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Job]:
        taken: list[_Job] = []
        rows = 0
        while self._pending and (
            not taken or rows + self._pending[0].n_rows <= self.max_rows_per_call
        ):
            job = self._pending.pop(0)
            taken.append(job)
            rows += job.n_rows
        return taken

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(job: _Job, outcome: Prediction | BaseException) -> None:
    if job.future.done():  # cancelled: the client went away
        return
    if isinstance(outcome, BaseException):
        job.future.set_exception(outcome)
    else:
        job.future.set_result(outcome)


def _predict(
    model: ServedModel, parts: Sequence[Mapping[str, Sequence[Any]]]
) -> tuple[np.ndarray[Any, Any], float]:
    started = time.perf_counter()
    if len(parts) == 1:
        columns = parts[0]
    else:
        columns = {
            column: [value for part in parts for value in part[column]]
            for column in schema.FEATURE_COLUMNS
        }
    proba = model.predict_proba(columns)
    return proba, time.perf_counter() - started
