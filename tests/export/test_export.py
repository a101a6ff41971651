"""ONNX export: every model type exports, onnxruntime matches torch (≤ 1e-4, same classes), the CLI
and `kiln predict --runtime onnx` work, bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cli_helpers import one_line_error, run_cli
from deploy_models import CONFIGS, cached_model, frame_for

import kiln
from kiln.deploy.export import export_onnx, load_onnx


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_onnx_matches_torch(kind: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    model_dir = cached_model(kind, tmp_path_factory)
    path = export_onnx(model_dir, tmp_path / "model.onnx")
    torch_model, onnx_model = kiln.load(model_dir), load_onnx(path)
    frame = frame_for(kind)
    data = torch_model.preprocessor.transform(frame)
    expected, got = torch_model._logits(data), onnx_model._logits(data)
    for name, logits in expected.items():
        assert float((logits - got[name]).abs().max()) <= 1e-4
        if logits.shape[1] > 1:
            assert torch.equal(logits.argmax(1), got[name].argmax(1))
    column = torch_model.predict(frame).iloc[:, 0]
    if column.dtype.kind == "f":  # regression: values within float rounding
        np.testing.assert_allclose(column, onnx_model.predict(frame).iloc[:, 0], atol=1e-4)
    else:  # classes identical
        np.testing.assert_array_equal(column, onnx_model.predict(frame).iloc[:, 0])


def test_dynamic_axes_and_sidecar(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    path = export_onnx(cached_model("lstm", tmp_path_factory), tmp_path / "out")  # a directory → out/model.onnx
    assert path == tmp_path / "out" / "model.onnx" and (tmp_path / "out" / "model.preprocessing.json").is_file()
    graph = onnx.load(str(path)).graph
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sentence_length"]
    # a shorter sequence than max_length runs and gives the same logits as the padded one
    model = load_onnx(path)
    ids = model.preprocessor.transform(frame_for("lstm").head(4), targets=False).inputs["sentence"]
    full = model.session.run(None, {"sentence": ids.numpy()})[0]
    short = model.session.run(None, {"sentence": ids[:, :8].numpy()})[0]
    assert np.abs(full - short).max() < 1e-5


def test_cli_export_and_predict_onnx(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    model_dir = cached_model("mlp", tmp_path_factory)
    csv = tmp_path / "rows.csv"
    frame_for("mlp").head(20).to_csv(csv, index=False)
    code, out, err = run_cli(capsys, monkeypatch, "export", model_dir, "--format", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 0, err
    code, _, err = run_cli(capsys, monkeypatch, "predict", tmp_path / "m.onnx", csv, "--runtime", "onnx", "-o", tmp_path / "onnx.csv")
    assert code == 0, err
    code, _, err = run_cli(capsys, monkeypatch, "predict", model_dir, csv, "-o", tmp_path / "torch.csv")
    assert code == 0, err
    assert (tmp_path / "onnx.csv").read_text().splitlines()[0] == (tmp_path / "torch.csv").read_text().splitlines()[0]


def test_bad_input_is_one_line(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    model_dir = cached_model("mlp", tmp_path_factory)
    one_line_error(run_cli(capsys, monkeypatch, "export", model_dir, "--format", "tflite", "-o", tmp_path / "m"), "tflite", "onnx")
    one_line_error(run_cli(capsys, monkeypatch, "predict", model_dir, "x.csv", "--runtime", "onnx"), "not an exported kiln ONNX model")
    one_line_error(run_cli(capsys, monkeypatch, "predict", model_dir, "x.csv", "--runtime", "tvm"), "--runtime", "tvm")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    (tmp_path / "bad.preprocessing.json").write_text((Path(export_onnx(model_dir, tmp_path / "ok.onnx")).with_suffix(".preprocessing.json")).read_text())
    one_line_error(run_cli(capsys, monkeypatch, "predict", tmp_path / "bad.onnx", "x.csv", "--runtime", "onnx"), "not a readable ONNX file")


def test_evaluate_with_the_onnx_runtime(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    model_dir = cached_model("mlp", tmp_path_factory)
    csv = tmp_path / "rows.csv"
    frame_for("mlp").to_csv(csv, index=False)
    path = export_onnx(model_dir, tmp_path / "m.onnx")
    onnx_metrics, torch_metrics = kiln.load(path, runtime="onnx").evaluate(csv), kiln.load(model_dir).evaluate(csv)
    assert onnx_metrics["accuracy"] == torch_metrics["accuracy"] and abs(onnx_metrics["loss"] - torch_metrics["loss"]) < 1e-5
    code, _, err = run_cli(capsys, monkeypatch, "evaluate", tmp_path / "m.onnx", csv, "--runtime", "onnx", "-o", tmp_path / "e.json")
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["accuracy"] == torch_metrics["accuracy"]
    one_line_error(run_cli(capsys, monkeypatch, "evaluate", model_dir, csv, "--runtime", "onnx"), "not an exported kiln ONNX model")
    one_line_error(run_cli(capsys, monkeypatch, "evaluate", model_dir, csv, "--runtime", "tvm"), "--runtime", "tvm")


def test_sequence_batches_are_cut_to_their_longest_row(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    from kiln.deploy.export import run_session, trimmed

    lstm = load_onnx(export_onnx(cached_model("bilstm_pool", tmp_path_factory), tmp_path / "lstm.onnx"))
    other = load_onnx(export_onnx(cached_model("ngram", tmp_path_factory), tmp_path / "ngram.onnx"))
    assert lstm.trim == {"sentence": 0} and other.trim == {}  # n-gram bags are not sequences
    data = lstm.preprocessor.transform(frame_for("bilstm_pool"))
    ids = data.inputs["sentence"][:16]
    longest = int((ids != 0).sum(1).max())
    assert longest < ids.shape[1] and trimmed({"sentence": ids}, lstm.trim)["sentence"].shape == (16, longest)
    full = run_session(lstm.session, ["sentence"], data, 16)["label"]
    cut = run_session(lstm.session, ["sentence"], data, 16, lstm.trim)["label"]
    assert float((full - cut).abs().max()) <= 1e-5
    transformer = load_onnx(export_onnx(cached_model("transformer", tmp_path_factory), tmp_path / "transformer.onnx"))
    assert transformer.trim == {"sentence": 0}
    data = transformer.preprocessor.transform(frame_for("transformer"))
    full, cut = (run_session(transformer.session, ["sentence"], data, 16, trim)["label"] for trim in (None, transformer.trim))
    assert float((full - cut).abs().max()) <= 1e-5
    textcnn = load_onnx(export_onnx(cached_model("textcnn", tmp_path_factory), tmp_path / "textcnn.onnx"))
    assert textcnn.trim == {"sentence": 0}  # windows wholly on padding are masked out of the max
    data = textcnn.preprocessor.transform(frame_for("textcnn"))
    full, cut = (run_session(textcnn.session, ["sentence"], data, 16, trim)["label"] for trim in (None, textcnn.trim))
    assert float((full - cut).abs().max()) <= 1e-5
