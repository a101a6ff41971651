"""`kiln explain` on model type `hf`: integrated gradients at the checkpoint's word embeddings, with a
baseline that keeps each row's length, padding and special tokens (every word → [MASK])."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

import kiln
from kiln.deploy.attributions import ProbedNet, hf_text_baselines
from kiln.deploy.explain import explain


@pytest.fixture(scope="module")
def hf_model(hf_config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("explain-hf") / "run"
    kiln.train(hf_config(dropout=0.0, trainer={"epochs": 2, "learning_rate": 2e-3}), output=run)
    return run / "model"


def test_baseline_keeps_length_padding_and_special_tokens(hf_model: Path) -> None:
    model = kiln.load(hf_model)
    feature = model.preprocessor.inputs[0]
    ids = model.preprocessor.transform(pd.DataFrame({"sentence": ["a good film", "bad"]}), targets=False).inputs["sentence"]
    probed = ProbedNet(model.net, ["sentence"], "label")
    (base,) = hf_text_baselines(probed, [feature], (torch.zeros_like(ids),), (ids,))
    vocab = feature.vocab
    assert base.shape == ids.shape and torch.equal(base == feature.tokenizer.pad_id, ids == feature.tokenizer.pad_id)
    assert [vocab[int(i)] for i in base[1] if int(i) != feature.tokenizer.pad_id] == ["[CLS]", "[MASK]", "[SEP]"]


def test_explain_an_hf_model(hf_model: Path, tmp_path: Path) -> None:
    rows = pd.DataFrame({"sentence": ["the film was good and lovely", "the plot was bad and dull", "a great movie"],
                         "label": [1, 0, 1]})
    report = explain(hf_model, rows, "0:3", tmp_path / "out", steps=50, repeats=2)
    assert report["completeness_error_p90"] <= 0.02
    first = report["rows"][0]["tokens"]["sentence"]
    words = [t for t, _ in first]
    assert words[0] == "[CLS]" and words[-1] == "[SEP]" and "good" in words
    assert "sentence" in report["importance"]["features"]
    html = (tmp_path / "out" / "explain.html").read_text()
    assert "lovely" in html and json.loads((tmp_path / "out" / "explanations.json").read_text())["rows"][1]["tokens"]
    assert {t for row in report["rows"] for t, _ in row["tokens"]["sentence"]} >= {"good", "bad", "great"}


def test_cli_explain_on_an_hf_model(hf_model: Path, sentiment: Path, tmp_path: Path, cli) -> None:
    code, out, err = cli("explain", hf_model, sentiment, "--rows", "0:2", "--steps", "20", "--repeats", "1", "-o", tmp_path / "why")
    assert code == 0, err
    assert "2 rows explained" in out and "sentence" in out  # the importance line of the one input
    assert (tmp_path / "why" / "explain.html").is_file() and (tmp_path / "why" / "importance.png").is_file()
