"""kiln: one declarative config takes a dataset through train → evaluate → predict → serve."""

from __future__ import annotations

import os as _os
from typing import Any

# Idle OpenMP threads must sleep, not spin, on small shared CPUs (set before torch loads).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["KilnError", "Model", "cross_validate", "load", "pretrain", "train", "tune", "__version__"]
_API = {"Model": "kiln.api", "load": "kiln.api", "train": "kiln.api", "pretrain": "kiln.api", "cross_validate": "kiln.api",
        "tune": "kiln.api",
        "KilnError": "kiln.errors"}


def __getattr__(name: str) -> Any:
    """Import the API lazily, so `kiln --help` answers without loading torch."""
    if name in _API:
        return getattr(_import(_API[name]), name)
    raise AttributeError(f"module 'kiln' has no attribute {name!r}")


def _import(module: str) -> Any:
    """Import `module`; the first time, with Python's garbage collector paused and what the import made
    frozen after it (gc.freeze: module-level objects live as long as the process, so later collections
    need not walk them). Importing torch, pandas and kiln made the collector run ~0.3-0.45 s here."""
    import gc
    import importlib
    import sys

    loaded = sys.modules.get(module)
    if loaded is None:
        enabled = gc.isenabled()
        gc.disable()
        try:
            loaded = importlib.import_module(module)
        finally:
            runtime = sys.modules.get("kiln.runtime")  # loaded by every API module (not by kiln.errors)
            if runtime is not None:
                runtime.freeze_heap()  # and it knows, so training need not count the frozen objects
            else:
                gc.freeze()
            if enabled:
                gc.enable()
    return loaded
