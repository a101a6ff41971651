"""One text column read by two input features (`column:`) on a few hundred real SMS rows: word ids for a
text CNN and a hashed n-gram bag beside it. The run trains well above chance, saves, loads, predicts from a
CSV with only the source column (API, `kiln predict`, the server, ONNX), and its monitoring statistics
are computed from that column. Config errors are one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
import torch
from cli_helpers import one_line_error, run_cli
from data_helpers import sms_sample

import kiln
from kiln.errors import KilnError
from kiln.supervised.config import load_supervised_config


def sms_config(path: Path) -> dict:
    return {
        "data": {"train": str(path), "split": {"validation": 0.1, "test": 0.3, "seed": 1}},
        "input_features": [
            {"name": "text", "type": "text", "tokenizer": "word", "vocab_size": 2000, "max_length": 40},
            {"name": "bag", "column": "text", "type": "text", "encoder": "ngram",
             "ngram": {"word": [1, 2], "char": [3, 4], "buckets": 4096}},
        ],
        "output_features": [{"name": "label", "type": "binary", "positive": "spam"}],
        "model": {"type": "cnn", "embedding_dim": 16, "text_kernel_sizes": [2, 3], "text_filters": 16, "hidden": [],
                  "ngram_dim": 8},
        "trainer": {"epochs": 8, "batch_size": 32, "optimizer": "adamw", "learning_rate": 0.01, "seed": 0},
    }


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("shared_column")
    frame = sms_sample(data_dir, root / "sms.csv")
    kiln.train(sms_config(root / "sms.csv"), output=root / "run", progress=False)
    return root / "run", frame


def test_trains_far_above_chance_and_saves_the_column(shared_run: tuple[Path, pd.DataFrame]) -> None:
    run_dir, _ = shared_run
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert test["accuracy"] > 0.9 and test["f1"] > 0.75  # majority class: 0.76 accuracy, spam f1 0
    features = json.loads((run_dir / "model" / "model.json").read_text())["config"]["input_features"]
    assert [(f["name"], f["column"]) for f in features] == [("text", None), ("bag", "text")]


def test_load_and_predict_from_a_csv_of_source_columns(shared_run: tuple[Path, pd.DataFrame], tmp_path: Path,
                                                       capsys, monkeypatch) -> None:
    run_dir, frame = shared_run
    rows = frame.head(40)
    loaded = kiln.load(run_dir)
    data = loaded.preprocessor.transform(rows, targets=False)
    assert set(data.inputs) == {"text", "bag"} and data.inputs["bag"].dim() == 3  # both from the one column
    direct = loaded.predict(rows[["text"]])
    rows[["text"]].to_csv(tmp_path / "rows.csv", index=False)
    code, _, err = run_cli(capsys, monkeypatch, "predict", run_dir, tmp_path / "rows.csv", "-o", tmp_path / "preds.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "preds.csv")["label_prediction"].tolist() == direct["label_prediction"].tolist()
    # the bag matters: the same rows with it zeroed change the probabilities
    blank = loaded._logits(type(data)({"text": data.inputs["text"], "bag": torch.zeros_like(data.inputs["bag"])}))
    assert not torch.allclose(blank["label"], loaded._logits(data)["label"])
    rows.rename(columns={"text": "txt"}).to_csv(tmp_path / "renamed.csv", index=False)
    one_line_error(run_cli(capsys, monkeypatch, "predict", run_dir, tmp_path / "renamed.csv"),
                   "['text'] not found in prediction data", "read by features 'text', 'bag'", "did you mean 'txt'?")


def test_serve_takes_each_source_column_once(shared_run: tuple[Path, pd.DataFrame]) -> None:
    from kiln.serve.app import create_app

    run_dir, frame = shared_run
    texts = frame.text.head(5).tolist()
    app = create_app({"spam": run_dir})

    async def go() -> tuple[httpx.Response, ...]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kiln.test") as client:
                models = await client.get("/v1/models")
                ok = await client.post("/v1/models/spam/predict", json={"rows": [{"text": t} for t in texts]})
                bad = await client.post("/v1/models/spam/predict", json={"rows": [{"bag": texts[0]}]})
                return models, ok, bad

    models, ok, bad = asyncio.run(go())
    assert models.json()["models"][0]["inputs"] == [{"name": "text", "type": "text"}]
    assert ok.status_code == 200, ok.text
    served = [p["label_prediction"] for p in ok.json()["predictions"]]
    assert served == kiln.load(run_dir).predict(pd.DataFrame({"text": texts}))["label_prediction"].tolist()
    assert bad.status_code == 422 and bad.json()["field"] == "rows[0].text"


def test_onnx_export_matches_torch(shared_run: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from kiln.deploy.export import export_onnx, load_onnx

    run_dir, frame = shared_run
    onnx_model, torch_model = load_onnx(export_onnx(run_dir, tmp_path / "model.onnx")), kiln.load(run_dir)
    assert onnx_model.input_names == ["text", "bag"]  # one graph input per feature, both fed from the column
    rows = frame[["text"]].head(30)
    data = torch_model.preprocessor.transform(rows, targets=False)
    assert float((torch_model._logits(data)["label"] - onnx_model._logits(data)["label"]).abs().max()) <= 1e-4
    assert onnx_model.predict(rows)["label_prediction"].tolist() == torch_model.predict(rows)["label_prediction"].tolist()


def test_monitoring_statistics_come_from_the_column(shared_run: tuple[Path, pd.DataFrame]) -> None:
    from kiln.monitor.drift import drift_report, load_stats

    run_dir, frame = shared_run
    stats = load_stats(run_dir / "model")
    assert stats["features"]["bag"]["column"] == "text"
    assert stats["features"]["bag"]["edges"] == stats["features"]["text"]["edges"]  # one column, one distribution
    served = frame[["text"]].head(300)  # what the server samples: source columns
    report = drift_report(stats, served, kiln.load(run_dir).predict(served))
    assert set(report["features"]) == {"text", "bag"} and not report["drift"]


def test_config_errors_are_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    base = sms_config(tmp_path / "missing.csv")
    with pytest.raises(KilnError, match=r"output_features\[0\] 'label': only input features take 'column'"):
        load_supervised_config({**base, "output_features": [{"name": "label", "type": "binary", "column": "y"}]})
    reads_target = {**base, "input_features": [*base["input_features"], {"name": "leak", "column": "label", "type": "category"}]}
    with pytest.raises(KilnError, match=r"input_features\[2\] 'leak': column 'label' is the output feature's"):
        load_supervised_config(reads_target)
    twice = {**base, "input_features": [*base["input_features"], {"name": "bag", "column": "text", "type": "text"}]}
    with pytest.raises(KilnError, match=r"feature names must be unique; repeated: \['bag'\]"):
        load_supervised_config(twice)
    pd.DataFrame({"txt": ["win cash now", "see you at 5"], "label": ["spam", "ham"]}).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.json").write_text(json.dumps({**base, "data": {"train": str(tmp_path / "t.csv")}}))
    one_line_error(run_cli(capsys, monkeypatch, "train", tmp_path / "c.json", "-o", tmp_path / "run"),
                   "['text'] not found in training data", "did you mean 'txt'?")
