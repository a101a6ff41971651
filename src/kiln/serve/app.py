"""`create_app`: the FastAPI service (routes in `routes`, state in `state`) with a direct predict path."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from kiln.errors import KilnError
from kiln.serve.admission import error
from kiln.serve.handlers import predict_response
from kiln.serve.routes import add_model_routes, add_ops_routes, add_runs_routes
from kiln.serve.settings import ServeSettings
from kiln.serve.state import ServerState
from kiln.serve.versions import check_name, model_dir_of

__all__ = ["ServeSettings", "create_app"]

log = logging.getLogger("kiln.serve")


class _KilnApp(FastAPI):
    """FastAPI with one shortcut: `POST /v1/models/{name}/predict` goes straight to its handler, past
    routing, dependency solving and the middleware stack, which otherwise cost about as much CPU per
    request as the handler itself. Every other request, and this route's OpenAPI entry, are FastAPI's."""

    predict_handler: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.predict_handler is not None:
            path, root = scope["path"], scope.get("root_path") or ""
            if root and path.startswith(root):
                path = path[len(root):]
            if path.startswith("/v1/models/") and path.endswith("/predict") and "/" not in path[11:-8] and len(path) > 19:
                await self._predict(path[11:-8], scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _predict(self, name: str, scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import ClientDisconnect

        try:
            response = await self.predict_handler(name, Request(scope, receive))
        except ClientDisconnect:
            return
        except Exception:  # noqa: BLE001 - what FastAPI's error middleware would do
            log.exception("predict request for %s failed", name)
            response = error(500, "internal server error")
        await response(scope, receive, send)


def _name_for(path: Path) -> str:
    path = path.resolve()
    return path.parent.name if path.name == "model" and (path.parent / "config.yaml").is_file() else path.name


def _sources(models: Mapping[str, Any] | Sequence[str | Path] | None) -> dict[str, Any]:
    if isinstance(models, Mapping):
        return dict(models)
    sources: dict[str, Any] = {}
    for item in models or []:
        name = _name_for(Path(item))
        if name in sources:
            raise KilnError(f"two models are named '{name}' (model name = directory name); rename one directory")
        sources[name] = item
    return sources


def create_app(models: Mapping[str, Any] | Sequence[str | Path] | None = None, registry: str | Path | None = None,
               settings: ServeSettings | None = None) -> FastAPI:
    """Build the service. `models`: model/run directories (name = directory name) or {name: dir or Model};
    `registry`: a model store folder whose promoted versions are served and polled for updates."""
    settings = settings or ServeSettings()
    sources = _sources(models)
    if not sources and registry is None:
        raise KilnError("nothing to serve: give model directories or --registry DIR")
    for name, source in sources.items():
        check_name(name)
        if isinstance(source, (str, Path)) and settings.runtime == "onnx":
            from kiln.deploy.export import find_onnx

            try:
                find_onnx(source)
            except KilnError as exc:
                raise KilnError(f"cannot serve {exc}") from None
        elif isinstance(source, (str, Path)):
            model_dir_of(source)  # a wrong path is a one-line input error now, not a failed startup later
    state = ServerState(sources, registry, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await state.startup()
        try:
            yield
        finally:
            await state.shutdown()

    app = _KilnApp(title="kiln model server", version="1", lifespan=lifespan,
                   description="Predictions from kiln models, with the exact preprocessing used in training.")
    app.state.kiln = state
    add_ops_routes(app, state)
    add_runs_routes(app, state)
    add_model_routes(app, state)
    app.predict_handler = partial(predict_response, state)
    return app
