"""`POST /v1/models/{name}/generate` for language models: JSON, or server-sent events that stream
each piece of text as it is sampled. Sampling runs in a worker thread; the event loop stays free."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiln.errors import KilnError
from kiln.serve.schema import RequestError

LM_INPUTS = [{"name": "prompt", "type": "text"}]
LM_OUTPUTS = [{"name": "text", "type": "text"}]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    max_new_tokens: int = Field(100, ge=1, le=2048)
    temperature: float = Field(0.8, ge=0.0)  # 0 = greedy
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
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
        model._check(request.max_new_tokens, request.temperature, request.top_k, request.top_p)
        model.encode_prompt(request.prompt)
    except KilnError as exc:
        raise RequestError("prompt", str(exc)) from None


def _options(request: GenerateRequest) -> dict[str, Any]:
    return {"max_new_tokens": request.max_new_tokens, "temperature": request.temperature, "top_k": request.top_k,
            "top_p": request.top_p, "seed": request.seed}


async def generate_text(model: Any, request: GenerateRequest) -> str:
    return await asyncio.to_thread(model.generate, request.prompt, **_options(request))


async def stream_events(model: Any, request: GenerateRequest) -> AsyncIterator[str]:
    """`data: {"token": ...}` per piece, then `event: done` with the whole text (or `event: error`)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()

    def work() -> None:
        try:
            for piece in model.stream(request.prompt, **_options(request)):
                loop.call_soon_threadsafe(queue.put_nowait, ("token", piece))
            loop.call_soon_threadsafe(queue.put_nowait, ("done", None))
        except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
            loop.call_soon_threadsafe(queue.put_nowait, ("error", f"{type(exc).__name__}: {exc}"))

    worker = loop.run_in_executor(None, work)
    pieces: list[str] = []
    try:
        while True:
            kind, value = await queue.get()
            if kind == "token":
                pieces.append(value or "")
                yield f"data: {json.dumps({'token': value})}\n\n"
            elif kind == "done":
                yield f"event: done\ndata: {json.dumps({'text': ''.join(pieces), 'pieces': len(pieces)})}\n\n"
                break
            else:
                yield f"event: error\ndata: {json.dumps({'detail': value})}\n\n"
                break
    finally:
        await asyncio.shield(worker)
