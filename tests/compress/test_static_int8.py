"""Static int8 with torch.ao (`quantize: {type: static, engine: torch}`): a small digits MLP keeps its
accuracy, runs int8 Linear kernels on quantised activations, is stored as int8 + JSON ranges (no
pickle) and reloads into exactly the network compression measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from deploy_models import CONFIGS, cached_model, train_tiny

import kiln
from kiln.deploy.common import split_frames
from kiln.deploy.compress import compress
from kiln.errors import KilnError
from kiln.io import load_tensors

FAST = {"batch_sizes": (1, 8), "timing_rows": 16, "timing_repeats": 1}
DIGITS = {"data": {"train": "sklearn:digits", "split": {"validation": 0.0, "test": 0.2, "seed": 42}},
          "input_features": [{"name": "image", "type": "image", "normalization": "per_pixel"}],
          "output_features": [{"name": "label", "type": "category"}],
          "model": {"type": "mlp", "hidden": [64, 32], "dropout": 0.1},
          "trainer": {"epochs": 6, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.003, "seed": 0}}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kiln.train(DIGITS, output=tmp_path_factory.mktemp("digits") / "run").run_dir


@pytest.fixture(scope="module")
def static_digits(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("static") / "q"
    return out, compress(digits, out, {"quantize": {"type": "static", "engine": "torch", "calibration_rows": 256}}, **FAST)


def test_accuracy_stays_close_to_fp32(static_digits: tuple[Path, dict]) -> None:
    _, report = static_digits
    before, after = report["rows"][0], report["rows"][-1]
    assert after["variant"].startswith("int8 static (torch.ao")
    assert before["value"] > 0.9  # a trained model, not chance
    assert abs(after["value"] - before["value"]) <= 0.02
    assert after["size_bytes"] < 0.4 * before["size_bytes"]


def test_runs_int8_kernels_and_stores_int8_without_pickle(static_digits: tuple[Path, dict]) -> None:
    out, _ = static_digits
    model = kiln.load(out)
    linears = [m for m in model.net.modules() if type(m).__module__.startswith("torch.ao.nn")
               and hasattr(m, "weight") and callable(m.weight)]
    assert len(linears) == 3 and all(m.weight().dtype == torch.qint8 for m in linears)  # 2 trunk layers + the head
    batch = model.preprocessor.transform(split_frames(model)["test"].head(5))
    with torch.inference_mode():
        hidden = model.net.trunk(model.net.encoders[0](batch.inputs["image"]))
        logits = model.net(batch.inputs)["label"]
    assert hidden.is_quantized and hidden.dtype == torch.quint8  # activations flow in uint8 between the layers
    assert logits.dtype == torch.float32 and logits.shape == (5, 10)
    tensors = load_tensors(out / "weights.safetensors")
    assert tensors["trunk.0.weight"].dtype == torch.int8 and tensors["heads.0.weight"].dtype == torch.int8
    assert tensors["trunk.0.weight.int8_scale"].dtype == torch.float32
    meta = json.loads((out / "model.json").read_text())
    assert meta["compression"]["static_engine"] in ("x86", "qnnpack")
    assert set(meta["compression"]["static_qparams"]) >= {"trunk.0", "trunk.1", "trunk.3", "heads.0.0"}
    assert not list(out.glob("*.pkl")) and not list(out.glob("*.pt"))


def test_reload_is_the_model_that_was_measured(static_digits: tuple[Path, dict], capsys, monkeypatch) -> None:
    out, report = static_digits
    first, second = kiln.load(out), kiln.load(out)
    test = first.preprocessor.transform(split_frames(first)["test"])
    assert first.metrics_for(test)["accuracy"] == report["rows"][-1]["value"]
    with torch.inference_mode():
        assert torch.equal(first.net(test.inputs)["label"], second.net(test.inputs)["label"])
    code, stdout, err = run_cli(capsys, monkeypatch, "evaluate", out, "sklearn:digits")
    assert code == 0 and "accuracy" in stdout, err
    code, _, err = run_cli(capsys, monkeypatch, "predict", out, "sklearn:digits", "-o", out.parent / "predictions.csv")
    assert code == 0 and len((out.parent / "predictions.csv").read_text().splitlines()) == 1798, err


def test_float_activations_and_encoders_stay_float(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = train_tiny("mlp", tmp_path_factory.mktemp("tanh"), model={**CONFIGS["mlp"]["model"], "activation": "tanh"})
    report = compress(source, tmp_path / "q", {"quantize": {"type": "static"}}, **FAST)
    before, after = report["rows"][0], report["rows"][-1]
    assert abs(after["value"] - before["value"]) <= 0.05
    net = kiln.load(tmp_path / "q").net
    assert isinstance(net.trunk[2].act, torch.nn.Tanh)  # tanh between a dequantise and a quantise
    assert not any(type(m).__module__.startswith("torch.ao") for m in net.encoders.modules())  # category embeddings: fp32


def test_static_torch_needs_linear_layers_and_training_rows(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = cached_model("mlp", tmp_path_factory)
    with pytest.raises(KilnError, match="add linear to modules"):
        compress(source, tmp_path / "a", {"quantize": {"type": "static", "modules": ["lstm"]}}, **FAST)
    test = source.parent.parent / "mlp.csv"
    with pytest.raises(KilnError, match="training split"):
        compress(source, tmp_path / "b", {"quantize": {"type": "static"}}, data=str(test), **FAST)


def test_cli_static_defaults_to_torch(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    source = cached_model("mlp", tmp_path_factory)
    code, out, err = run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "s", "--quantize", "static", "-q")
    assert code == 0, err
    assert "int8 static (torch.ao" in out
    assert kiln.load(tmp_path / "s").recipe["quantize"]["engine"] == "torch"
