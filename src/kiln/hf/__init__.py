"""Local Hugging Face checkpoints (model type `hf`) and LoRA adapters.

`transformers` and `peft` are the optional extra `kiln[hf]`: nothing here imports them at module
level, and nothing ever downloads (HF_HUB_OFFLINE=1, local_files_only=True).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from kiln.errors import KilnError

INSTALL = "pip install 'kiln[hf]'"


def require(name: str) -> ModuleType:
    """Import `transformers` or `peft` on first use, offline; a one-line KilnError if missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        module = importlib.import_module(name)
    except ImportError:
        raise KilnError(f"Hugging Face checkpoints need the optional packages transformers and peft "
                        f"({name} is not installed): {INSTALL}") from None
    if name == "transformers":
        module.utils.logging.disable_progress_bar()  # no weight-loading bars between kiln's own output
    return module


__all__ = ["INSTALL", "require"]
