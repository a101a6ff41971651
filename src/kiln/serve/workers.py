"""Each served model's own threads: a bounded number of jobs in flight, work dropped once its
client is gone or its deadline has passed, and a watch on jobs running past their deadline."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

WEDGED_GRACE_S = 1.0  # a job still running this long past its deadline makes the model not ready


def start_thread(name: str, nice: int) -> None:
    """Runs first in each worker thread (Linux only): the OS thread gets `name` (15 bytes) so `top -H` and
    /proc show whose it is, and `nice` added to its nice value (Linux threads each have their own), so
    the scheduler serves normal-priority threads first when the CPU is short."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass
    if nice > 0:
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except OSError:
            pass


class QueueFull(Exception):
    """The model's queue is full: a 429."""


class Cancelled(Exception):
    """The work was dropped: its client went away or its deadline passed."""


class ModelWorker:
    """`threads` threads for one model; at most `threads + queue_size` jobs in flight (QueueFull past it).
    `nice` > 0 lowers the threads' CPU priority (Linux; see `start_thread`)."""

    def __init__(self, name: str, threads: int = 1, queue_size: int = 8, nice: int = 0) -> None:
        self.threads, self.queue_size = max(1, threads), max(0, queue_size)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=f"kiln-{name}", initializer=start_thread,
                                        initargs=(f"kiln-{name}", nice))
        self._lock = threading.Lock()
        self._in_flight = 0
        self._running: dict[int, float] = {}  # job id → deadline (time.monotonic)
        self._ids = itertools.count()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, fn: Callable[[], Any], deadline: float, cancel: threading.Event | None = None) -> asyncio.Future:
        """Run `fn()` on this model's threads unless, when its turn comes, `cancel` is set or `deadline`
        (time.monotonic) has passed (then the future raises Cancelled)."""
        with self._lock:
            if self._in_flight >= self.threads + self.queue_size:
                raise QueueFull
            self._in_flight += 1
        job = next(self._ids)
        future = self._pool.submit(self._call, fn, job, deadline, cancel)
        future.add_done_callback(self._done)
        return asyncio.wrap_future(future)

    def _done(self, _future: Any) -> None:
        with self._lock:
            self._in_flight -= 1

    def _call(self, fn: Callable[[], Any], job: int, deadline: float, cancel: threading.Event | None) -> Any:
        if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
            raise Cancelled("dropped before it started")
        self._running[job] = deadline
        try:
            return fn()
        finally:
            self._running.pop(job, None)

    def overdue_s(self) -> float:
        """How far past its deadline the longest-overdue running job is (0 when none is)."""
        now = time.monotonic()
        return max((now - d for d in list(self._running.values())), default=0.0)

    def wedged(self) -> bool:
        return self.overdue_s() > WEDGED_GRACE_S

    def close(self) -> None:
        """Take no more jobs; queued and running ones finish (or drop themselves when overdue)."""
        self._pool.shutdown(wait=False)
