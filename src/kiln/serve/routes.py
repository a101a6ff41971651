"""The routes: dashboard, ops (health, ready, metrics), runs, the model list and the two model endpoints."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from kiln.serve.admission import auth_error, error
from kiln.serve.auth import AuthError
from kiln.serve.generation import GenerateRequest
from kiln.serve.handlers import generate_response, predict_response
from kiln.serve.runs import list_runs as runs_in
from kiln.serve.runs import run_detail, run_path
from kiln.serve.state import ServerState

_GENERATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": GenerateRequest.model_json_schema(),
                                         "example": {"prompt": "ROMEO:", "max_new_tokens": 50, "temperature": 0.8, "top_k": 50}}},
    }
}

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": {"type": "object"},
                                    "description": "one object per row: input column → value (see GET /v1/models)"}},
        }, "example": {"rows": [{"age": 22, "sex": "male"}]}}},
    }
}


_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["detail"],
    "properties": {"detail": {"type": "string"}, "field": {"type": "string"}}}}}}


def _errors(**codes: str) -> dict[int | str, dict]:
    """OpenAPI entries for the one-line JSON errors a route answers with."""
    return {int(code.removeprefix("e")): {"description": text, **_ERROR} for code, text in codes.items()}


_AUTH = {"e401": "no or unknown API key (with --api-keys)", "e403": "the key may not call this model"}
_MODEL_ERRORS = _errors(**_AUTH, e404="no model of this name is served", e408="the body was not received in time (--timeout-s)",
                        e413="the body is over --max-body-bytes", e422="invalid JSON, rows or options (`field` names the first bad one)",
                        e429="the model's queue is full; retry after Retry-After seconds",
                        e503="the model is being replaced; retry", e504="over the --timeout-s limit")


def add_ops_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        """A small self-contained status page (no external assets)."""
        from importlib.resources import files

        from fastapi.responses import HTMLResponse

        return HTMLResponse(files("kiln.serve").joinpath("dashboard.html").read_text(encoding="utf-8"))

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], responses={503: {"description": "starting, shutting down, or a model is stuck (`not_ready`)"}})
    async def ready() -> Response:
        """Readiness: every model is loaded, its batcher runs and no worker is stuck past its deadline
        (503 while starting or shutting down, or with `not_ready`: model → reason)."""
        stuck = state.not_ready()
        ok = state.ready and bool(state.models) and not stuck
        body = {"status": "ready" if ok else "not ready", "models": {n: m.version for n, m in state.models.items()}}
        if stuck:
            body["not_ready"] = stuck
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse,
             responses={200: {"description": "Prometheus text exposition format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics() -> Response:
        """Prometheus metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def add_runs_routes(app: FastAPI, state: ServerState) -> None:
    settings = state.settings

    def runs_access(request: Request) -> JSONResponse | None:
        if state.keys is not None:
            try:
                state.keys.authenticate(request.headers)  # any valid key may read training runs
            except AuthError as exc:
                return auth_error(exc)
        return None

    @app.get("/v1/runs", tags=["runs"], responses=_errors(**_AUTH))
    async def list_runs(request: Request) -> Response:
        """Training runs in the runs folder (`--runs`), newest first: model type, epochs, scalar metrics per split."""

        denied = runs_access(request)
        if denied is not None:
            return denied
        root = settings.runs_dir
        runs = await asyncio.to_thread(runs_in, root) if root is not None else []
        return JSONResponse({"folder": str(root) if root is not None else None, "runs": runs})

    @app.get("/v1/runs/{run}", tags=["runs"], responses=_errors(**_AUTH, e404="no run of this name, or no runs folder"))
    async def get_run(run: str, request: Request) -> Response:
        """One run: its summary, training history (columns of history.csv) and confusion matrices."""

        denied = runs_access(request)
        if denied is not None:
            return denied
        path = run_path(settings.runs_dir, run) if settings.runs_dir is not None else None
        if path is None:
            return error(404, f"no run '{run}' in the runs folder" if settings.runs_dir is not None else "no runs folder (kiln serve --runs DIR)")
        return JSONResponse(await asyncio.to_thread(run_detail, path))


def add_model_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/v1/models", tags=["models"], responses=_errors(**_AUTH))
    async def list_models(request: Request) -> Response:
        """Served models (those the API key may call): name, version, input/output schema, metrics."""
        allowed = None
        if state.keys is not None:
            try:
                allowed = state.keys.authenticate(request.headers)
            except AuthError as exc:
                return auth_error(exc)
        items = [m.describe(state.monitored) for n, m in sorted(state.models.items()) if allowed is None or allowed.allows(n)]
        return JSONResponse({"models": items})

    @app.post("/v1/models/{name}/explain", tags=["models"], openapi_extra=_PREDICT_BODY, responses=_MODEL_ERRORS)
    async def explain(name: str, request: Request) -> Response:
        """Explain rows: `{"rows": [...], "steps": 50}` → integrated-gradients attributions per row (at most 16 rows)."""
        from kiln.serve.explain import explain_response

        return await explain_response(state, name, request)

    @app.post("/v1/models/{name}/predict", tags=["models"], openapi_extra=_PREDICT_BODY, responses=_MODEL_ERRORS)
    async def predict(name: str, request: Request) -> Response:
        """Predict rows: `{"rows": [{column: value}, ...]}` → one prediction object per row, in order."""
        return await predict_response(state, name, request)

    @app.post("/v1/models/{name}/generate", tags=["models"], openapi_extra=_GENERATE_BODY, responses=_MODEL_ERRORS)
    async def generate(name: str, request: Request) -> Response:
        """Continue a prompt with a language model: `{"prompt": ..., "max_new_tokens": 100, "temperature": 0.8,
        "top_k", "top_p", "seed", "stream": true}` → server-sent events (`data: {"token"}` ..., `event: done`),
        or one JSON object `{"text"}` with `"stream": false`."""
        return await generate_response(state, name, request)
