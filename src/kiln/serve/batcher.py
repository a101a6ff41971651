"""Dynamic micro-batching: one asyncio queue per model; a task gathers requests into one `predict`.

Requests carry validated rows (plain dicts); the input frame is built, predicted and turned back into
JSON-ready records once per batch, so the pandas and model costs are paid per batch, not per request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kiln.serve.schema import build_frame, frame_to_records
from kiln.serve.workers import ModelWorker, QueueFull

log = logging.getLogger("kiln.serve")


class BatcherClosed(RuntimeError):
    """The batcher was replaced (hot swap) or is shutting down; the caller retries on the new one."""


@dataclass
class _Job:
    rows: list[dict[str, Any]]
    future: asyncio.Future = field(repr=False)
    deadline: float = float("inf")  # time.monotonic() past which nobody waits for the answer


_STOP = object()


class MicroBatcher:
    """Collects up to `max_batch_size` rows (or waits `max_wait_ms`), predicts them in a worker thread
    and hands each caller its own records. `max_batch_size=1` turns batching off (one request per call).

    `predict` is a blocking function `DataFrame -> DataFrame` (one output row per input row, in order);
    `features` is the input schema (`[{"name", "type"}]`) the frame is built with; `on_batch`
    (optional) is called in the worker thread after each batch with the input and output frames.
    Batches run on `worker` (the model's own thread); at most `queue_size` requests wait (QueueFull past it).
    """

    def __init__(self, predict: Callable[[pd.DataFrame], pd.DataFrame], features: list[dict[str, str]],
                 max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 on_batch: Callable[[pd.DataFrame, pd.DataFrame], Any] | None = None,
                 observe_batch: Callable[[int], Any] | None = None, worker: ModelWorker | None = None,
                 queue_size: int = 256) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.predict = predict
        self.features = features
        self.max_batch_size = max_batch_size
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.on_batch = on_batch
        self.observe_batch = observe_batch
        self.worker = worker or ModelWorker("batcher", 1, 1)
        self.queue_size = queue_size
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._carry: _Job | None = None
        self.batches = 0

    def start(self) -> "MicroBatcher":
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kiln-batcher")
        return self

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def submit(self, rows: list[dict[str, Any]], deadline: float = float("inf")) -> asyncio.Future:
        """Queue a request's validated rows; the returned future resolves to its own prediction records,
        one dict per row (no await happens between the caller's model lookup and this put, so a hot
        swap cannot lose it)."""
        if self._closed:
            raise BatcherClosed("model is being replaced")
        if self._queue.qsize() >= self.queue_size:
            raise QueueFull
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(rows, future, deadline))
        return future

    async def close(self) -> None:
        """Stop taking requests, finish every queued one, then end the task."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_STOP)
        if self._task is not None:
            await self._task
        self.worker.close()

    async def _next(self, timeout: float | None) -> Any:
        if timeout is None:
            return await self._queue.get()
        if not self._queue.empty():
            return self._queue.get_nowait()
        if timeout <= 0:
            raise TimeoutError
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = self._carry if self._carry is not None else await self._next(None)
            self._carry = None
            if first is _STOP:
                break
            jobs, rows = [first], len(first.rows)
            deadline = loop.time() + self.max_wait
            while rows < self.max_batch_size:
                try:
                    job = await self._next(deadline - loop.time())
                except TimeoutError:
                    break
                if job is _STOP:
                    stopping = True
                    break
                if rows + len(job.rows) > self.max_batch_size:
                    self._carry = job  # starts the next batch
                    break
                jobs.append(job)
                rows += len(job.rows)
            await self._run_batch(jobs)
        if self._carry is not None:  # only possible when STOP arrived after a carried job
            await self._run_batch([self._carry])
            self._carry = None

    async def _run_batch(self, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]  # callers that timed out or went away
        if not jobs:
            return
        self.batches += 1
        try:
            deadline = max(j.deadline for j in jobs)
            results = await self.worker.submit(lambda: self._predict_jobs(jobs), deadline)
        except BaseException as exc:  # noqa: BLE001 - every caller must get an answer
            results = [exc] * len(jobs)
        for job, result in zip(jobs, results):
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        frame = build_frame(rows, self.features)
        out = self.predict(frame)
        if len(out) != len(rows):
            raise RuntimeError(f"predict returned {len(out)} rows for {len(rows)}")
        records = frame_to_records(out)
        self._after(frame, out)
        return records

    def _predict_jobs(self, jobs: list[_Job]) -> list[Any]:
        """Runs in a worker thread: one predict over all rows; on failure, each job alone so one bad
        request cannot fail its neighbours."""
        if self.observe_batch is not None:
            self.observe_batch(sum(len(j.rows) for j in jobs))
        try:
            records = self._predict([row for job in jobs for row in job.rows] if len(jobs) > 1 else jobs[0].rows)
            results: list[Any] = []
            start = 0
            for job in jobs:
                results.append(records[start : start + len(job.rows)])
                start += len(job.rows)
            return results
        except Exception:  # noqa: BLE001
            if len(jobs) == 1:
                raise
        results = []
        for job in jobs:
            try:
                results.append(self._predict(job.rows))
            except Exception as exc:  # noqa: BLE001
                results.append(exc)
        return results

    def _after(self, inputs: pd.DataFrame, outputs: pd.DataFrame) -> None:
        if self.on_batch is None:
            return
        try:
            self.on_batch(inputs, outputs)
        except Exception:  # noqa: BLE001 - monitoring must never fail a prediction
            log.exception("sampling a batch failed")
