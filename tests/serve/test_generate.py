"""Language models behind the service: POST /v1/models/{name}/generate, JSON and server-sent events."""

from __future__ import annotations

import json
from pathlib import Path

from _helpers import client_for, run

import kiln
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings

def _events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines.get("event", "message"), json.loads(lines["data"])))
    return events


def test_generate_json_and_stream_agree(lm_dir: Path) -> None:
    async def scenario() -> None:
        async with client_for(create_app({"gpt": lm_dir})) as client:
            assert (await client.get("/ready")).status_code == 200
            listed = (await client.get("/v1/models")).json()
            entry = next(m for m in listed["models"] if m["name"] == "gpt") if isinstance(listed, dict) else listed[0]
            assert entry["task"] == "generation" and entry["inputs"] == [{"name": "prompt", "type": "text"}]
            ask = {"prompt": "the ", "max_new_tokens": 12, "temperature": 0.8, "seed": 3}
            whole = await client.post("/v1/models/gpt/generate", json=ask | {"stream": False})
            assert whole.status_code == 200, whole.text
            text = whole.json()["text"]
            assert text == kiln.load(lm_dir).generate("the ", max_new_tokens=12, temperature=0.8, seed=3)
            streamed = await client.post("/v1/models/gpt/generate", json=ask)
            assert streamed.headers["content-type"].startswith("text/event-stream")
            events = _events(streamed.text)
            tokens = [e["token"] for kind, e in events if kind == "message"]
            assert len(tokens) == 12 and "".join(tokens) == text
            assert events[-1] == ("done", {"text": text, "pieces": 12})
            metrics = (await client.get("/metrics")).text
            assert 'model="gpt"' in metrics

    run(scenario())


def test_generate_errors(lm_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with client_for(create_app({"gpt": lm_dir}, settings=ServeSettings())) as client:
            bad = await client.post("/v1/models/gpt/generate", json={"prompt": "the", "temperature": -1})
            assert bad.status_code == 422 and bad.json()["field"] == "temperature"
            unseen = await client.post("/v1/models/gpt/generate", json={"prompt": "xyz§", "stream": False})
            assert unseen.status_code == 422 and "never saw" in unseen.json()["detail"]
            extra = await client.post("/v1/models/gpt/generate", json={"prompt": "the", "bogus": 1})
            assert extra.status_code == 422 and extra.json()["field"] == "bogus"
            rows = await client.post("/v1/models/gpt/predict", json={"rows": [{"prompt": "the"}]})
            assert rows.status_code == 422 and "/generate" in rows.json()["detail"]
            missing = await client.post("/v1/models/nope/generate", json={"prompt": "the"})
            assert missing.status_code == 404

    run(scenario())


def test_generate_body_limit_like_predict(lm_dir: Path) -> None:
    """generate and predict share one body reader: 413 by Content-Length, or counted while streaming."""
    async def chunks():  # no content-length: the streamed size is counted
        for _ in range(10):
            yield b" " * 500

    async def scenario() -> None:
        async with client_for(create_app({"gpt": lm_dir}, settings=ServeSettings(max_body_bytes=2000))) as client:
            big = await client.post("/v1/models/gpt/generate", json={"prompt": "the " * 1000, "stream": False})
            assert big.status_code == 413 and "2000 bytes" in big.json()["detail"]
            streamed = await client.post("/v1/models/gpt/generate", content=chunks())
            assert streamed.status_code == 413
            small = await client.post("/v1/models/gpt/generate", json={"prompt": "the ", "max_new_tokens": 3, "stream": False})
            assert small.status_code == 200

    run(scenario())
