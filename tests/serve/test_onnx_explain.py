"""`kiln serve --runtime onnx` (exported files through onnxruntime) and POST /v1/models/{name}/explain."""

from __future__ import annotations

from pathlib import Path

import pytest
from _helpers import client_for, run
from deploy_models import cached_model

from kiln.deploy.export import export_onnx
from kiln.errors import KilnError
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings

ROWS = [{"x1": 0.5, "x2": -1.0, "noise": 0.1, "color": "red"}, {"x1": -1.5, "x2": 0.3, "noise": 0.0, "color": "blue"}]


def test_serve_onnx_predicts_like_torch(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    model_dir = cached_model("mlp", tmp_path_factory)
    export_onnx(model_dir, tmp_path / "tiny" / "model.onnx")
    onnx_app = create_app([tmp_path / "tiny"], settings=ServeSettings(runtime="onnx"))
    torch_app = create_app({"tiny": model_dir})

    async def go(app):
        async with client_for(app) as client:
            return (await client.post("/v1/models/tiny/predict", json={"rows": ROWS})).json()

    got, expected = run(go(onnx_app)), run(go(torch_app))
    assert [p["y_prediction"] for p in got["predictions"]] == [p["y_prediction"] for p in expected["predictions"]]


def test_serve_onnx_refuses_a_model_directory(tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(KilnError, match="cannot serve .*kiln export"):
        create_app([cached_model("mlp", tmp_path_factory)], settings=ServeSettings(runtime="onnx"))


def test_explain_endpoint(tmp_path_factory: pytest.TempPathFactory) -> None:
    app = create_app({"tiny": cached_model("mlp", tmp_path_factory), "text": cached_model("lstm", tmp_path_factory)})

    async def go():
        async with client_for(app) as client:
            ok = await client.post("/v1/models/tiny/explain", json={"rows": ROWS, "steps": 20})
            text = await client.post("/v1/models/text/explain", json={"rows": [{"sentence": "a great fun film"}]})
            bad = await client.post("/v1/models/tiny/explain", json={"rows": ROWS, "steps": 1})
            many = await client.post("/v1/models/tiny/explain", json={"rows": ROWS * 9})
            return ok, text, bad, many

    ok, text, bad, many = run(go())
    assert ok.status_code == 200, ok.text
    explanations = ok.json()["explanations"]
    assert len(explanations) == 2 and set(explanations[0]["features"]) == {"x1", "x2", "noise", "color"}
    assert [t for t, _ in text.json()["explanations"][0]["tokens"]["sentence"]] == ["a", "great", "fun", "film"]
    assert bad.status_code == 422 and many.status_code == 422
