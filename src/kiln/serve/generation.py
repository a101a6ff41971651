"""`POST /v1/models/{name}/generate` for language models: JSON, or server-sent events that stream
each piece of text as it is sampled. Sampling runs on the model's own worker threads; the event loop
stays free, and a generation nobody waits for any more stops between tokens."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiln.errors import KilnError
from kiln.serve.schema import RequestError
from kiln.serve.workers import Cancelled, ModelWorker

LM_INPUTS = [{"name": "prompt", "type": "text"}]
LM_OUTPUTS = [{"name": "text", "type": "text"}]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    prompt: str = Field(min_length=1)
    max_new_tokens: int = Field(100, ge=1, le=2048)
    temperature: float = Field(0.8, ge=0.0, le=100.0)  # 0 = greedy
    top_k: int | None = Field(None, ge=1, lt=2**31)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=2**63)
    stream: bool = True  # server-sent events; false = one JSON answer


def parse_request(body: Any) -> GenerateRequest:
    """Validate a generate body; a RequestError names the first bad field."""
    try:
        request = GenerateRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise RequestError(field, f"{field}: {err['msg']}") from None
    return request


def check_prompt(model: Any, request: GenerateRequest) -> None:
    """Refuse a prompt the model cannot read before any streaming starts (422, not a broken stream)."""
    try:
        model._check(request.max_new_tokens, request.temperature, request.top_k, request.top_p, request.seed)
        model.encode_prompt(request.prompt)
    except KilnError as exc:
        raise RequestError("prompt", str(exc)) from None


def _options(request: GenerateRequest) -> dict[str, Any]:
    return {"max_new_tokens": request.max_new_tokens, "temperature": request.temperature, "top_k": request.top_k,
            "top_p": request.top_p, "seed": request.seed}


class Generation:
    """One generation on the model's worker threads. The worker checks `cancel` and the deadline between
    tokens, so a cancelled or overdue generation stops within one token. `submit` raises QueueFull."""

    def __init__(self, model: Any, request: GenerateRequest, worker: ModelWorker, timeout_s: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.cancel = threading.Event()
        self.deadline = time.monotonic() + timeout_s
        self.pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.model, self.request = model, request
        self.future = worker.submit(self._work, self.deadline, self.cancel)
        self.future.add_done_callback(self._ended)

    def _ended(self, future: asyncio.Future) -> None:
        if not future.cancelled():
            future.exception()  # retrieved here: nobody may be waiting any more (timeout, client gone)
        self.pieces.put_nowait(("end", future))

    def _work(self) -> str:
        pieces = self.model.stream(self.request.prompt, **_options(self.request))
        text: list[str] = []
        try:
            for piece in pieces:
                if self.cancel.is_set() or time.monotonic() > self.deadline:
                    raise Cancelled("stopped between tokens")
                text.append(piece)
                self.loop.call_soon_threadsafe(self.pieces.put_nowait, ("token", piece))
        finally:
            pieces.close()
        return "".join(text)


async def until_disconnect(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Returns when the client has gone away (call once the body has been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def stream_events(generation: Generation, timeout_s: float) -> AsyncIterator[str]:
    """`data: {"token": ...}` per piece, then `event: done` with the whole text (or `event: error`).
    When the client goes away, the server stops iterating this and the generation is cancelled."""
    pieces: list[str] = []
    try:
        while True:
            kind, value = await generation.pieces.get()
            if kind == "token":
                pieces.append(value or "")
                yield f"data: {json.dumps({'token': value})}\n\n"
                continue
            exc = None if value.cancelled() else value.exception()
            if exc is None and not value.cancelled():
                yield f"event: done\ndata: {json.dumps({'text': ''.join(pieces), 'pieces': len(pieces)})}\n\n"
            else:
                detail = f"generation took longer than the {timeout_s:g} s limit" if isinstance(exc, Cancelled) or exc is None \
                    else f"{type(exc).__name__}: {exc}"
                yield f"event: error\ndata: {json.dumps({'detail': detail})}\n\n"
            break
    finally:
        generation.cancel.set()
