"""`POST /v1/models/{name}/explain`: integrated-gradients attributions for a few rows, with the same
admission (API keys, model lookup), body limit, row validation and time limit as predict."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from kiln.serve.handlers import admitted_rows, failed
from kiln.serve.schema import build_frame
from kiln.serve.state import ServerState

MAX_ROWS = 16  # explanations cost ~`steps` forward and backward passes per row
_references: dict[tuple[str, str], Any] = {}  # baseline reference rows per served model version


def _explain(served: Any, rows: list[dict[str, Any]], steps: int) -> list[dict[str, Any]]:
    from kiln.deploy.explain import explain_rows, reference_data

    frame = build_frame(rows, served.inputs)
    key = (served.name, served.version)
    if key not in _references:
        _references[key] = reference_data(served.model, frame)
    return explain_rows(served.model, frame, _references[key], steps)


async def explain_response(state: ServerState, name: str, request: Request) -> Response:
    """`{"rows": [...], "steps": 50}` → one explanation per row (feature totals, token scores, saliency)."""
    settings = state.settings
    admitted = await admitted_rows(state, name, request, MAX_ROWS)
    if isinstance(admitted, Response):
        return admitted
    call, served, body, rows = admitted
    fail = call.fail
    steps = body.get("steps", 50)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= 500:
        return fail(422, "steps: an integer from 2 to 500", "steps")
    if getattr(served.model, "runtime", "torch") != "torch":
        return fail(422, f"model '{name}' is served by onnxruntime; explanations need the torch model (serve its model directory)")
    try:
        out = await asyncio.wait_for(asyncio.to_thread(_explain, served, rows, steps), call.remaining(settings.timeout_s))
    except Exception as exc:  # noqa: BLE001 - mapped to 504 / 422 / 500
        return failed(call, exc, "explanation", name, settings.timeout_s)
    call.ok(rows=len(out))
    return JSONResponse({"model": name, "version": served.version, "explanations": out})
