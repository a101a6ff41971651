"""What predict and generate share before any model work: the key check, model lookup, task check and
one body reader with one size limit. Every refusal is a one-line JSON error and is counted."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from kiln.errors import did_you_mean
from kiln.serve.auth import AuthError
from kiln.serve.metrics import ServeMetrics
from kiln.serve.served import ServedModel
from kiln.serve.state import ServerState


def error(status: int, message: str, field_: str | None = None, **headers: str) -> JSONResponse:
    """`{"detail": ..., "field": ...}` with the given status (and headers)."""
    body: dict[str, Any] = {"detail": message}
    if field_ is not None:
        body["field"] = field_
    return JSONResponse(body, status_code=status, headers=headers or None)


def auth_error(exc: AuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    return error(exc.status, exc.message, **headers)


class Call:
    """One request's bookkeeping: when it started and its metric labels (model, version)."""

    def __init__(self, metrics: ServeMetrics, name: str, served: ServedModel | None) -> None:
        self.metrics, self.start = metrics, time.perf_counter()
        self.label = (name, served.version) if served is not None else ("_unknown", "")

    def fail(self, status: int, message: str, field_: str | None = None, **headers: str) -> JSONResponse:
        self.metrics.observe(*self.label, status, time.perf_counter() - self.start)
        return error(status, message, field_, **headers)

    def ok(self, rows: int = 0) -> None:
        self.metrics.observe(*self.label, 200, time.perf_counter() - self.start, rows=rows)

    def remaining(self, limit: float) -> float:
        """Seconds left of `limit` since the request started."""
        return max(limit - (time.perf_counter() - self.start), 0.0)


def admit(state: ServerState, name: str, request: Request, task: str) -> tuple[Call, ServedModel | None, JSONResponse | None]:
    """Key check, model lookup and task check; a response means refused."""
    served = state.models.get(name)
    call = Call(state.metrics, name, served)
    if state.keys is not None:
        try:
            state.keys.authorize(request.headers, name)
        except AuthError as exc:
            state.metrics.observe(*call.label, exc.status)
            return call, None, auth_error(exc)
    if served is None:
        served_names = ", ".join(sorted(state.models)) or "none"
        return call, None, call.fail(404, f"unknown model '{name}'{did_you_mean(name, state.models)}; served: {served_names}")
    if served.task != task:
        kind, use = ("a language model", "generate with a prompt") if served.task == "generation" else ("not a language model", "predict with rows")
        return call, None, call.fail(422, f"model '{name}' is {kind}: POST /v1/models/{name}/{use}")
    return call, served, None


async def read_body(call: Call, request: Request, limit: int, timeout_s: float) -> bytes | JSONResponse:
    """The whole body, or a 413 as soon as it is known to be over `limit` bytes (by Content-Length,
    else counted while it streams in: nothing past the limit is read), or a 408 when the client has
    not sent it all within what is left of `timeout_s` (a client stalled mid-body holds nothing for long)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return call.fail(413, f"request body of {int(length)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(call.remaining(timeout_s)):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return call.fail(413, f"request body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        return call.fail(408, f"request body not received within the {timeout_s:g} s limit", Connection="close")
    return b"".join(chunks)


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(raw: bytes) -> Any:
    """A request body as JSON; ValueError (a 422) for invalid JSON, nesting too deep for the parser,
    or a string holding an unpaired UTF-16 surrogate escape (not Unicode: it cannot be encoded)."""
    try:
        value = json.loads(raw or b"null")
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if _SURROGATE.search(raw):
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.keys())
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, str):
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise ValueError(f"a string holds an unpaired surrogate \\u{ord(node[exc.start]):04x}; send valid Unicode") from None
    return value
