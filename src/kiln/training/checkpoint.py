"""The one checkpoint format: a single safetensors file (tensors) with a JSON skeleton of the
trainer state in its metadata, written atomically after every round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kiln.errors import KilnError
from kiln.io import load_state, save_state

CHECKPOINT = "checkpoint.safetensors"


def rng_state() -> dict[str, Any]:
    """torch's random state (CPU, and every CUDA device when there is one)."""
    state: dict[str, Any] = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo rng_state(): resumed runs draw the same dropout masks and shuffles as uninterrupted ones."""
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    return save_state(folder / CHECKPOINT, state)


def read_checkpoint(folder: Path | None) -> dict[str, Any]:
    """The state saved in a checkpoint folder; a one-line error when there is none or it is unreadable."""
    path = folder / CHECKPOINT if folder is not None else None
    if path is None or not path.is_file():
        raise KilnError(f"nothing to resume: no checkpoint at {path}")
    try:
        return load_state(path)
    except Exception as exc:  # a truncated or foreign file: safetensors, JSON or key errors
        raise KilnError(f"cannot resume: the checkpoint {path} is unreadable ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'corrupt'}); start a new run or delete it") from None


def has_checkpoint(folder: Path) -> bool:
    return (folder / CHECKPOINT).is_file()
