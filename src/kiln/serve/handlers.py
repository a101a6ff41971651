"""The two model endpoints: `predict` (micro-batched rows) and `generate` (language models)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kiln.errors import KilnError
from kiln.serve.admission import admit, parse_json, read_body
from kiln.serve.batcher import BatcherClosed
from kiln.serve.forms import form_body, is_multipart
from kiln.serve.generation import (
    Generation,
    check_prompt,
    parse_request,
    stream_events,
    until_disconnect,
)
from kiln.serve.schema import RequestError, validate_rows
from kiln.serve.state import ServerState
from kiln.serve.workers import Cancelled, QueueFull

RETRY_AFTER_S = "1"

log = logging.getLogger("kiln.serve")


async def admitted_rows(state: ServerState, name: str, request: Request, max_rows: int) -> tuple[Any, Any, Any, list] | Response:
    """Admission (key, model, task), the body (size and time limits), JSON or multipart parsing and
    row validation, shared by predict and explain: (call, served model, body, rows) or the refusal."""
    settings = state.settings
    call, served, refused = admit(state, name, request, "prediction")
    if refused is not None:
        return refused
    fail = call.fail
    raw = await read_body(call, request, settings.max_body_bytes, settings.timeout_s)
    if isinstance(raw, Response):
        return raw
    try:
        if (request.headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
            return fail(422, "send application/json ({\"rows\": [...]}) or multipart/form-data (files as file parts)", "body")
        if is_multipart(request.headers.get("content-type")):
            body = await form_body(raw, request.headers, served.inputs, max_rows)
        else:
            body = parse_json(raw)
    except ValueError as exc:
        return fail(422, f"body is not valid JSON: {exc}", "body")
    except RequestError as exc:
        return fail(422, exc.message, exc.field)
    try:
        rows = validate_rows(body, served.inputs, max_rows)
    except RequestError as exc:
        return fail(422, exc.message, exc.field)
    return call, served, body, rows


async def hold(call: Any, settings: Any) -> None:
    """Wait `busy_hold_s` (within the request's time limit) before a 429: a client that retries at once,
    ignoring Retry-After, gets at most one refusal per hold instead of hundreds a second
    through the event loop every other model's requests also go through."""
    await asyncio.sleep(min(settings.busy_hold_s, call.remaining(settings.timeout_s)))


def failed(call: Any, exc: Exception, what: str, name: str, timeout_s: float) -> Response:
    """The answer to work that raised: 504 past the time limit, 422 for a KilnError (bad input), else
    500 with the traceback logged (call it from the `except` block)."""
    if isinstance(exc, TimeoutError):
        return call.fail(504, f"{what} took longer than the {timeout_s:g} s limit")
    if isinstance(exc, KilnError):
        return call.fail(422, str(exc))
    log.exception("%s failed for model %s", what, name)
    return call.fail(500, f"{what} failed: {type(exc).__name__}")


async def predict_response(state: ServerState, name: str, request: Request) -> Response:
    """`{"rows": [...]}` → one prediction record per row, through the model's micro-batcher."""
    settings = state.settings
    admitted = await admitted_rows(state, name, request, settings.max_rows)
    if isinstance(admitted, Response):
        return admitted
    call, served, body, rows = admitted
    fail = call.fail

    remaining = call.remaining(settings.timeout_s)
    try:
        checked = served.inputs
        for _ in range(5):  # a hot swap between lookup and submit: retry on the new model
            served = state.models[name]
            call.label = (name, served.version)
            if served.inputs != checked:  # the new version takes other inputs: check the rows again
                try:
                    rows, checked = validate_rows(body, served.inputs, settings.max_rows), served.inputs
                except RequestError as exc:
                    return fail(422, exc.message, exc.field)
            try:
                future = served.batcher.submit(rows, time.monotonic() + remaining)
                break
            except BatcherClosed:
                await asyncio.sleep(0)
            except QueueFull:
                await hold(call, settings)
                return fail(429, f"model '{name}' has {settings.queue_size} requests waiting; retry later", **{"Retry-After": RETRY_AFTER_S})
        else:
            return fail(503, f"model '{name}' is being replaced; retry")
        out = await asyncio.wait_for(future, remaining)
    except Exception as exc:  # noqa: BLE001 - mapped to 504 / 422 / 500
        return failed(call, exc, "prediction", name, settings.timeout_s)
    call.ok(rows=len(out))
    return JSONResponse({"model": name, "version": served.version, "predictions": out})


async def generate_response(state: ServerState, name: str, request: Request) -> Response:
    """A prompt → server-sent events as text is sampled, or one JSON `{"text"}` with `"stream": false`."""
    settings = state.settings
    call, served, refused = admit(state, name, request, "generation")
    if refused is not None:
        return refused
    fail = call.fail
    raw = await read_body(call, request, settings.max_body_bytes, settings.timeout_s)
    if isinstance(raw, Response):
        return raw
    try:
        ask = parse_request(parse_json(raw))
        check_prompt(served.model, ask)
    except ValueError as exc:
        return fail(422, f"body is not valid JSON: {exc}", "body")
    except RequestError as exc:
        return fail(422, exc.message, exc.field)
    timeout = settings.stream_timeout_s if ask.stream else call.remaining(settings.timeout_s)
    try:
        generation = Generation(served.model, ask, served.worker, timeout)
    except QueueFull:
        await hold(call, settings)
        busy = served.worker.threads + served.worker.queue_size
        return fail(429, f"model '{name}' has {busy} generations running or waiting; retry later", **{"Retry-After": RETRY_AFTER_S})
    if ask.stream:
        call.ok()
        return StreamingResponse(stream_events(generation, timeout), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    gone = asyncio.ensure_future(until_disconnect(request.receive))
    try:
        await asyncio.wait({generation.future, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not generation.future.done():
            generation.cancel.set()  # timed out or the client went away: the worker stops at the next token
    if not generation.future.done() or isinstance(generation.future.exception(), Cancelled):
        return fail(504, f"generation took longer than the {settings.timeout_s:g} s limit")
    if generation.future.exception() is not None:
        exc = generation.future.exception()
        log.error("generation failed for model %s: %s", name, exc)
        return fail(500, f"generation failed: {type(exc).__name__}")
    call.ok()
    return JSONResponse({"model": name, "version": served.version, "text": generation.future.result()})
