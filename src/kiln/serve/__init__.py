"""Serving kiln models over HTTP: `kiln serve`, `create_app`, the model registry and API keys.

Import `kiln.serve.app` / `kiln.serve.server` for the FastAPI parts; this package's root stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ModelRegistry", "ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("ServeSettings", "create_app"):
        from kiln.serve import app

        return getattr(app, name)
    if name == "ModelRegistry":
        from kiln.serve.registry import ModelRegistry

        return ModelRegistry
    raise AttributeError(name)
