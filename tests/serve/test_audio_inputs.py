"""Audio inputs over HTTP: base64 in JSON or a multipart file part, never a server path; the body limit,
keys and batching are the same as for images; bad content is a 422 naming the row."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import pytest
from _helpers import client_for, run
from audio_helpers import audio_config, make_tones

import kiln
from kiln.serve.app import create_app
from kiln.serve.auth import add_key
from kiln.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served_audio")
    table = make_tones(root, per_class=6)
    config = audio_config(table)
    config["trainer"]["epochs"] = 1
    kiln.train(config, output=root / "run", progress=False)
    return root


def test_base64_and_multipart_predict_like_the_model(audio_run: Path) -> None:
    clips = [audio_run / "clips" / n for n in ("0_low.wav", "1_high.wav")]
    wav = [c.read_bytes() for c in clips]
    b64 = base64.b64encode(wav[0]).decode()

    async def go():
        async with client_for(create_app({"tones": audio_run / "run"})) as c:
            return (await c.post("/v1/models/tones/predict", json={"rows": [{"path": b64}]}),
                    await c.post("/v1/models/tones/predict", json={"rows": [{"path": "data:audio/wav;base64," + b64}]}),
                    await c.post("/v1/models/tones/predict", files=[("path", ("a.wav", wav[0])), ("path", ("b.wav", wav[1]))]),
                    await c.post("/v1/models/tones/predict", json={"rows": [{"path": str(clips[0])}]}),
                    await c.post("/v1/models/tones/predict", files={"path": ("x.wav", b"RIFF not really")}))

    plain, data_url, upload, by_path, bad = run(go())
    assert plain.status_code == 200 and data_url.status_code == 200 and upload.status_code == 200, upload.text
    want = kiln.load(audio_run / "run").predict(pd.DataFrame({"path": [str(c) for c in clips]}))["label_probability_high"].tolist()
    for answer, expect in ((plain, want[:1]), (data_url, want[:1]), (upload, want)):
        got = [p["label_probability_high"] for p in answer.json()["predictions"]]
        assert len(got) == len(expect) and max(abs(a - b) for a, b in zip(got, expect)) < 1e-5
    assert by_path.status_code == 422 and "does not read file paths" in by_path.json()["detail"]
    assert bad.status_code == 422 and "row 0" in bad.json()["detail"] and "not a readable WAV" in bad.json()["detail"]


def test_body_limit_and_keys_apply_to_audio(audio_run: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    key = add_key(keys, "team", ["tones"])
    wav = (audio_run / "clips" / "0_low.wav").read_bytes()
    settings = ServeSettings(api_keys=keys, max_body_bytes=len(wav) + 1000)
    app = create_app({"tones": audio_run / "run"}, settings=settings)

    async def go():
        async with client_for(app) as c:
            post = lambda **kw: c.post("/v1/models/tones/predict", **kw)  # noqa: E731
            return (await post(files={"path": ("a.wav", wav)}),
                    await post(files={"path": ("a.wav", wav)}, headers={"X-API-Key": key}),
                    await post(files={"path": ("a.wav", wav + b"\0" * 5000)}, headers={"X-API-Key": key}),
                    await post(json={"rows": [{"path": base64.b64encode(wav + b"\0" * 5000).decode()}]}, headers={"X-API-Key": key}))

    no_key, ok, big, big_json = run(go())
    assert no_key.status_code == 401 and ok.status_code == 200, ok.text
    assert big.status_code == 413 and big_json.status_code == 413
