"""One client cannot stall the server: each model has its own bounded worker, a full queue is a 429 (held
busy_hold_s without holding up other models), sampling threads run at a lower CPU priority,
overdue or abandoned generations stop between tokens, and /ready names a wedged model."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from _helpers import client_for, rows, run, running_server

import kiln
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings


def _slow_lm(lm_dir: Path) -> tuple[object, list[int]]:
    """The real tiny GPT, 5 ms per token; `produced[0]` counts the tokens it has sampled."""
    model = kiln.load(lm_dir)
    stream, produced = model.stream, [0]

    def slow_stream(*args, **kwargs):
        for piece in stream(*args, **kwargs):
            time.sleep(0.005)
            produced[0] += 1
            yield piece

    model.stream = slow_stream  # type: ignore[method-assign]
    return model, produced


async def _settled(produced: list[int]) -> int:
    """The token count once it has stopped growing (or after 200 checks 50 ms apart)."""
    last = -1
    for _ in range(200):
        if produced[0] == last:
            return last
        last = produced[0]
        await asyncio.sleep(0.05)
    return produced[0]


def test_flooded_language_model_does_not_stall_another_model(lm_dir: Path, run_dir: Path) -> None:
    lm, produced = _slow_lm(lm_dir)
    settings = ServeSettings(timeout_s=1.0, generate_workers=1, generate_queue_size=2)
    app = create_app({"gpt": lm, "m": run_dir}, settings=settings)
    long = {"prompt": "the ", "max_new_tokens": 2048, "stream": False}

    async def go():
        async with client_for(app) as c:
            flood = [asyncio.create_task(c.post("/v1/models/gpt/generate", json=long)) for _ in range(12)]
            await asyncio.sleep(0.1)
            during = [await c.post("/v1/models/m/predict", json={"rows": rows(2)}) for _ in range(3)]
            answers = await asyncio.gather(*flood)
            after_flood = await _settled(produced)
            short = await c.post("/v1/models/gpt/generate", json={"prompt": "the ", "max_new_tokens": 5, "stream": False})
            return during, answers, after_flood, short, await c.get("/ready")

    during, answers, after_flood, short, ready = run(go())
    assert [r.status_code for r in during] == [200, 200, 200]
    codes = Counter(r.status_code for r in answers)
    assert codes == {429: 9, 504: 3}, codes  # 1 running + 2 waiting; the rest refused at once
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["retry-after"] == "1" and "retry later" in refused.json()["detail"]
    assert after_flood < 1024  # the overdue generation stopped between tokens; the queued ones never started
    assert short.status_code == 200 and len(short.json()["text"]) == 5  # the worker is free again
    assert ready.status_code == 200


def test_stream_client_gone_stops_sampling(lm_dir: Path) -> None:
    lm, produced = _slow_lm(lm_dir)
    app = create_app({"gpt": lm}, settings=ServeSettings(generate_workers=1, generate_queue_size=0))
    with running_server(app) as (url, _server):

        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=10) as c:
                async with c.stream("POST", "/v1/models/gpt/generate", json={"prompt": "the ", "max_new_tokens": 2048}) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data:"):
                            break  # the client goes away after its first token
                stopped = await _settled(produced)
                again = await c.post("/v1/models/gpt/generate", json={"prompt": "the ", "max_new_tokens": 3, "stream": False})
                return stopped, again

        stopped, again = run(go())
    assert 0 < stopped < 500  # stopped within a few tokens of the disconnect, not after all 2048
    assert again.status_code == 200  # with one worker and no queue, a still-busy worker would answer 429


def test_predict_queue_full_429_and_wedged_model_not_ready(run_dir: Path) -> None:
    model = kiln.load(run_dir)
    predict, release = model.predict, threading.Event()

    def wedged(frame):
        release.wait(30)
        return predict(frame)

    model.predict = wedged  # type: ignore[method-assign]
    app = create_app({"stuck": model, "ok": run_dir}, settings=ServeSettings(timeout_s=0.2, queue_size=2, max_batch_size=1))

    async def go():
        async with client_for(app) as c:
            first = await c.post("/v1/models/stuck/predict", json={"rows": rows(1)})  # 504, its batch still runs
            more = await asyncio.gather(*(c.post("/v1/models/stuck/predict", json={"rows": rows(1)}) for _ in range(4)))
            for _ in range(100):  # busy past its deadline by more than the grace period
                ready = await c.get("/ready")
                if ready.status_code == 503:
                    break
                await asyncio.sleep(0.05)
            other = await c.post("/v1/models/ok/predict", json={"rows": rows(1)})
            release.set()
            for _ in range(100):
                if (await c.get("/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            return first, more, ready, other, await c.get("/ready")

    first, more, ready, other, recovered = run(go())
    assert first.status_code == 504
    codes = Counter(r.status_code for r in more)
    assert codes[429] >= 1 and set(codes) <= {429, 504}, codes
    assert ready.status_code == 503 and list(ready.json()["not_ready"]) == ["stuck"]
    assert "past its deadline" in ready.json()["not_ready"]["stuck"]
    assert other.status_code == 200
    assert recovered.status_code == 200


def test_serve_cli_refuses_bad_queue_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kiln.cli import app as cli_app
    from kiln.errors import KilnError

    for flag, value in (("--queue-size", "0"), ("--generate-workers", "0"), ("--generate-queue-size", "-1"),
                        ("--generate-nice", "20"), ("--generate-nice", "-1"), ("--busy-hold-s", "-1")):
        r = CliRunner().invoke(cli_app, ["serve", str(tmp_path), flag, value])
        assert isinstance(r.exception, KilnError) and flag in str(r.exception)


def _priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values and names are Linux's")
def test_sampling_threads_run_at_lower_priority_than_predictions(lm_dir: Path, run_dir: Path) -> None:
    lm, predictor = kiln.load(lm_dir), kiln.load(run_dir)
    stream, predict, seen = lm.stream, predictor.predict, {}

    def recording_stream(*args, **kwargs):
        seen["gpt"] = (_priority(), Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())
        yield from stream(*args, **kwargs)

    def recording_predict(frame):
        seen["m"] = (_priority(), Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())
        return predict(frame)

    lm.stream, predictor.predict = recording_stream, recording_predict  # type: ignore[method-assign]
    app = create_app({"gpt": lm, "m": predictor}, settings=ServeSettings(generate_nice=5))

    async def go():
        async with client_for(app) as c:
            g = await c.post("/v1/models/gpt/generate", json={"prompt": "the ", "max_new_tokens": 3, "stream": False})
            p = await c.post("/v1/models/m/predict", json={"rows": rows(1)})
            return g, p, _priority()

    g, p, base = run(go())
    assert g.status_code == 200 and p.status_code == 200
    assert seen["gpt"] == (min(19, base + 5), "kiln-gpt")  # the OS schedules sampling after everything else
    assert seen["m"] == (base, "kiln-m")  # predictions keep the server's priority


def test_a_refusal_is_held_while_other_models_answer(lm_dir: Path, run_dir: Path) -> None:
    lm, _ = _slow_lm(lm_dir)
    settings = ServeSettings(timeout_s=10.0, generate_workers=1, generate_queue_size=0, busy_hold_s=1.5)
    app = create_app({"gpt": lm, "m": run_dir}, settings=settings)
    long = {"prompt": "the ", "max_new_tokens": 200, "stream": False}
    order: list[str] = []

    async def go():
        async with client_for(app) as c:
            async def ask(label: str, path: str, body: dict) -> httpx.Response:
                response = await c.post(path, json=body)
                order.append(f"{label} {response.status_code}")
                return response

            busy = asyncio.create_task(ask("gen", "/v1/models/gpt/generate", long))
            await asyncio.sleep(0.1)
            refused = asyncio.create_task(ask("refused", "/v1/models/gpt/generate", long))
            await asyncio.sleep(0.1)
            predicted = [await ask("predict", "/v1/models/m/predict", {"rows": rows(1)}) for _ in range(3)]
            return await busy, await refused, predicted

    _busy, refused, predicted = run(go())
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert [r.status_code for r in predicted] == [200, 200, 200]
    # the refusal waited out its hold without holding up the other model: 3 predictions came back first
    assert order.index("refused 429") > order.index("predict 200") + 2, order
