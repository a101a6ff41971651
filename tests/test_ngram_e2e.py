"""`encoder: ngram` end to end on a few hundred real SMS rows: trains well above chance, and the saved
model (JSON state + safetensors) predicts the same through kiln.load, `kiln evaluate`, `kiln predict`
and `kiln serve`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import run_cli
from data_helpers import sms_sample

import kiln


@pytest.fixture(scope="module")
def spam_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("ngram")
    frame = sms_sample(data_dir, root / "sms.csv")
    config = {
        "data": {"train": str(root / "sms.csv"), "split": {"validation": 0.1, "test": 0.3, "seed": 1}},
        "input_features": [{"name": "text", "type": "text", "encoder": "ngram",
                            "ngram": {"word": [1, 2], "char": [3, 4], "buckets": 16384, "dropout": 0.3}}],
        "output_features": [{"name": "label", "type": "binary", "positive": "spam"}],
        "model": {"type": "linear", "embedding_dim": 8},
        "trainer": {"epochs": 6, "batch_size": 32, "learning_rate": 0.02, "seed": 0},
    }
    kiln.train(config, output=root / "run")
    return root / "run", frame


def test_trains_far_above_chance(spam_run: tuple[Path, pd.DataFrame]) -> None:
    test = json.loads((spam_run[0] / "metrics.json").read_text())["test"]  # the held-out 30%
    assert test["accuracy"] > 0.9 and test["f1"] > 0.75  # majority class: 0.76 accuracy, spam f1 0
    assert not list(spam_run[0].rglob("*.pkl")) and (spam_run[0] / "model" / "weights.safetensors").is_file()


def test_load_predict_evaluate_and_cli(spam_run: tuple[Path, pd.DataFrame], tmp_path: Path, capsys, monkeypatch) -> None:
    run_dir, frame = spam_run
    rows = frame.head(40)
    loaded = kiln.load(run_dir)
    direct = loaded.predict(rows.drop(columns=["label"]))
    rows.to_csv(tmp_path / "rows.csv", index=False)
    code, _, err = run_cli(capsys, monkeypatch, "predict", run_dir, tmp_path / "rows.csv", "-o", tmp_path / "preds.csv")
    assert code == 0, err
    written = pd.read_csv(tmp_path / "preds.csv")
    assert written["label_prediction"].tolist() == direct["label_prediction"].tolist()
    code, out, err = run_cli(capsys, monkeypatch, "evaluate", run_dir, tmp_path / "rows.csv")
    assert code == 0 and "accuracy" in out, err
    assert loaded.evaluate(rows)["accuracy"] == pytest.approx((direct["label_prediction"] == rows["label"]).mean())


def test_serve_answers_like_predict(spam_run: tuple[Path, pd.DataFrame]) -> None:
    import httpx

    from kiln.serve.app import create_app

    run_dir, frame = spam_run
    texts = frame.text.head(5).tolist()
    app = create_app({"spam": run_dir})

    async def go() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kiln.test") as client:
                return await client.post("/v1/models/spam/predict", json={"rows": [{"text": t} for t in texts]})

    response = asyncio.run(go())
    assert response.status_code == 200, response.text
    served = [p["label_prediction"] for p in response.json()["predictions"]]
    assert served == kiln.load(run_dir).predict(pd.DataFrame({"text": texts}))["label_prediction"].tolist()
