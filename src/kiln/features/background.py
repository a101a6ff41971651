"""Work done ahead in one forked child process, on a second CPU core, while this process goes on.

`Background(jobs)` forks once (callers ask `spare_core()` first); the child runs the jobs in order (numpy
work only: no torch op runs in a forked child) and writes each result, a tuple of numpy arrays, into a pipe;
`take()` reads the next one. Anything that goes wrong (no fork, the child failing or dying) makes `take()`
answer None, and the caller computes the result itself: the child can only make things faster, never
different."""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

Arrays = tuple[np.ndarray, ...]
_SIZE = struct.Struct("<q")  # the byte length of a result's header (JSON: each array's dtype and shape)


def cores() -> int:
    """CPU cores this process may run on (its affinity, within a cgroup's CPU quota)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return max(1, min(count, int(quota) // int(period))) if quota != "max" else count
    except (OSError, ValueError):
        return count


def spare_core(samples: int = 5) -> bool:
    """Whether a core is idle now: fewer tasks run than there are cores, in each of a few looks 1 ms apart
    (/proc/loadavg's running count, this process included; a task that runs for a moment is not a busy core).
    The environment variable KILN_BACKGROUND=0 says no, KILN_BACKGROUND=1 yes, without looking."""
    setting = os.environ.get("KILN_BACKGROUND", "")
    if setting in ("0", "1"):
        return setting == "1"
    running = []
    for i in range(samples):
        if i:
            time.sleep(0.001)
        try:
            running.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return False
    return min(running) < cores()


class Background:
    """The results of `jobs`, computed in a forked child, taken in order (None: compute it here)."""

    def __init__(self, jobs: Sequence[Callable[[], Arrays]]) -> None:
        self.pid, self.pipe, self.left = 0, None, len(jobs)
        if not hasattr(os, "fork") or not jobs:
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run the jobs, write the results, never return into the caller's code
            os.close(read)
            _run(jobs, write)
        os.close(write)
        self.pid, self.pipe = pid, os.fdopen(read, "rb", buffering=0)
        self._done = weakref.finalize(self, _reap, pid, self.pipe)

    def take(self) -> Arrays | None:
        """The next job's result, or None where the child could not give it (then none of the later ones)."""
        if self.pipe is None or self.left <= 0:
            return None
        self.left -= 1
        try:
            result = _read(self.pipe)
        except (OSError, ValueError, EOFError) as exc:
            logging.getLogger("kiln").debug("background preprocessing stopped (%s): computing here", exc)
            result = None
        if result is None or self.left == 0:
            self.close()
        return result

    def close(self) -> None:
        """Stop the child (if it still runs) and reap it."""
        if self.pipe is not None:
            self._done()
            self.pipe = None


def _run(jobs: Sequence[Callable[[], Arrays]], fd: int) -> None:
    """The child: each job's result into the pipe, then exit (0, or 1 after any failure)."""
    code = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            for job in jobs:
                _write(out, job())
    except BaseException:  # noqa: BLE001 - any failure: the parent computes the rest itself
        code = 1
    finally:
        os._exit(code)


def _write(out: BinaryIO, arrays: Arrays) -> None:
    """One result: the header's length, the header, then each array's bytes. (Not numpy's .npy format:
    np.lib.format.read_array seeks in a real file object, "Illegal seek" on a pipe; no pickle either.)"""
    header = json.dumps([(a.dtype.str, a.shape) for a in arrays]).encode()
    for part in (_SIZE.pack(len(header)) + header, *(_bytes(np.ascontiguousarray(a)) for a in arrays)):
        view = memoryview(part)
        while len(view):  # a write to a pipe may take part of it (a signal)
            view = view[out.write(view) or 0 :]


def _read(pipe: BinaryIO) -> Arrays | None:
    """One result, or None where the pipe ended first."""
    size = _exactly(pipe, _SIZE.size)
    if size is None:
        return None
    header = _exactly(pipe, _SIZE.unpack(size)[0])
    if header is None:
        return None
    arrays = []
    for dtype, shape in json.loads(header):
        array = np.empty(shape, dtype=np.dtype(dtype))
        if _fill(pipe, memoryview(_bytes(array))) < array.nbytes:
            return None
        arrays.append(array)
    return tuple(arrays)


def _bytes(array: np.ndarray) -> np.ndarray:
    """A contiguous array's memory as flat bytes (a view)."""
    return array.reshape(-1).view(np.uint8)


def _exactly(pipe: BinaryIO, size: int) -> bytes | None:
    buffer = bytearray(size)
    return bytes(buffer) if _fill(pipe, memoryview(buffer)) == size else None


def _fill(pipe: BinaryIO, view: memoryview) -> int:
    """Read into view until it is full or the pipe ends; the bytes read."""
    done = 0
    while done < len(view):
        got = pipe.readinto(view[done:])  # type: ignore[attr-defined]  # a raw FileIO
        if not got:
            break
        done += got
    return done


def _reap(pid: int, pipe: BinaryIO) -> None:
    """Close the pipe, stop the child and reap it."""
    pipe.close()
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
