"""Thread settings, seeding and the garbage collector's frozen heap, chosen deliberately for small shared CPUs."""

from __future__ import annotations

import contextlib
import gc
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from kiln.errors import KilnError


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: the argument, else $KILN_THREADS, else all cores up to 4.

    OpenMP's wait policy is set to PASSIVE in `kiln/__init__.py` before torch loads, so idle
    threads sleep instead of spinning on a core another process needs.
    """
    if threads is None:
        env = os.environ.get("KILN_THREADS") or os.environ.get("OMP_NUM_THREADS")
        threads = int(env) if env else min(4, os.cpu_count() or 1)
    threads = max(1, int(threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def select_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise KilnError(f"trainer.device: '{name}' requested but CUDA is not available here; use auto or cpu")
    return torch.device(name)


_heap_frozen_for_good = False  # kiln froze what was loaded (the API's first import, a server): it stays frozen


def freeze_heap(collect: bool = False) -> None:
    """gc.freeze() for the rest of the process: what is alive now (modules, a server's models: a few hundred
    thousand objects) is never walked by a full collection again, a pause of 100 ms or more that a server
    would show in its tail latency. `collect`: free the cyclic garbage first, so none is frozen with it."""
    global _heap_frozen_for_good
    if collect:
        gc.collect()
    gc.freeze()
    _heap_frozen_for_good = True


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Within the block Python's collector skips the objects alive when it starts (modules, data frames,
    ...): a full collection walks them all (~0.25 s with pandas, sklearn and torch loaded) and one could
    land mid-epoch. Cyclic garbage made before the block is freed after it. Nothing to do when the heap
    is already frozen: by kiln (known without a walk; gc.get_freeze_count() walks the frozen objects,
    ~22 ms after kiln's imports) or by someone else."""
    if _heap_frozen_for_good or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
