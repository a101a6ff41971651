"""Refuse a network that cannot fit in memory before allocating it: build it on the `meta` device
(shapes only, no storage), count its parameters, compare with the memory this process can use."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from kiln.errors import KilnError

M = TypeVar("M", bound=nn.Module)
TRAINING_COPIES = 4  # fp32 weights, gradients and Adam's two moments
LOADING_COPIES = 1


def available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable, capped by a cgroup (v2 or v1) limit."""
    limits: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < 2**60:
                limits.append(int(limit) - int(Path(usage_file).read_text().strip()))
        except (OSError, ValueError):
            continue
    if not limits:
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 2**62
    return max(min(limits), 0)


_PROBING = threading.local()
_INITS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "xavier_uniform_", "xavier_normal_",
          "kaiming_uniform_", "kaiming_normal_", "orthogonal_")


def _skippable(init: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    @functools.wraps(init)
    def wrapper(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if getattr(_PROBING, "active", False):
            return tensor  # shapes only: filling meta tensors would import torch._dynamo (seconds) for nothing
        return init(tensor, *args, **kwargs)

    wrapper.__kiln_skippable__ = True  # type: ignore[attr-defined]
    return wrapper


for _name in _INITS:  # nn.init's fillers skip meta probes (this thread's only); elsewhere they run as before
    if not getattr(getattr(nn.init, _name), "__kiln_skippable__", False):
        setattr(nn.init, _name, _skippable(getattr(nn.init, _name)))


def parameter_count(make: Callable[[], nn.Module]) -> int | None:
    """Parameters + buffers of the module `make` builds, counted on the meta device (None if that fails)."""
    _PROBING.active = True
    try:
        with torch.device("meta"):
            probe = make()
    except Exception:  # noqa: BLE001 - a module that cannot be built without storage (e.g. one loading a
        return None  # checkpoint from disk): no estimate; a real input error surfaces in the real build
    finally:
        _PROBING.active = False
    return sum(t.numel() for t in probe.parameters()) + sum(t.numel() for t in probe.buffers())


def build_within_memory(make: Callable[[], M], what: str, copies: int = TRAINING_COPIES) -> M:
    """`make()`, after checking that `copies` fp32 copies of its parameters fit in available memory."""
    count = parameter_count(make)
    if count is not None:
        need, have = count * 4 * copies, available_memory()
        if need > have:
            use = "train" if copies > 1 else "load"
            raise KilnError(f"{what} has {count:,} parameters: ~{need / 2**30:.1f} GiB to {use}, but only "
                            f"{have / 2**30:.1f} GiB of memory is available; make it smaller "
                            "(d_model, layers, hidden, embedding_dim, vocab_size, max_length, block_size)")
    return make()
