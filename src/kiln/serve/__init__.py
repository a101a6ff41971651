"""Serving kiln models over HTTP: `kiln serve`, `create_app`, the on-disk model store and API keys.

Import `kiln.serve.app` / `kiln.serve.server` for the FastAPI parts; this package's root stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ModelStore", "ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from kiln.serve.app import create_app

        return create_app
    if name == "ServeSettings":
        from kiln.serve.settings import ServeSettings

        return ServeSettings
    if name == "ModelStore":
        from kiln.serve.versions import ModelStore

        return ModelStore
    raise AttributeError(name)
