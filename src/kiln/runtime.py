"""Thread settings and seeding, chosen deliberately for small shared CPUs."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


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
        from kiln.errors import KilnError

        raise KilnError(f"trainer.device: '{name}' requested but CUDA is not available here; use auto or cpu")
    return torch.device(name)


def rng_state() -> dict[str, Any]:
    """torch's random state (CPU, and every CUDA device when there is one), for a checkpoint."""
    state: dict[str, Any] = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo rng_state(): resumed runs draw the same dropout masks and shuffles as uninterrupted ones."""
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def read_checkpoint(path: Any) -> dict[str, Any]:
    """The state saved at `path` (a checkpoint file); a one-line error when there is none."""
    from pathlib import Path

    from kiln.errors import KilnError
    from kiln.io import load_state

    if path is None or not Path(path).is_file():
        raise KilnError(f"nothing to resume: no checkpoint at {path}")
    return load_state(path)
