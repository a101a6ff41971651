"""kiln compress: int8 storage round-trips, the compressed directory loads with kiln.load and
predicts like the compressed model measured, pruning zeroes the asked share, max_metric_drop refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import one_line_error, run_cli
from deploy_models import CONFIGS, cached_model, frame_for, trainer

import kiln
from kiln.deploy import quantize
from kiln.deploy.compress import compress
from kiln.deploy.compressed import CompressedModel
from kiln.deploy.export import load_onnx

FAST = {"batch_sizes": (1, 8), "timing_rows": 16, "timing_repeats": 1}  # latency figures are not checked here


def test_int8_rows_round_trip() -> None:
    weight = torch.randn(6, 10)
    values, scale = quantize.quantize_rows(weight)
    assert values.dtype == torch.int8 and scale.shape == (6,)
    assert float((values.float() * scale[:, None] - weight).abs().max()) <= float(scale.max()) / 2 + 1e-6
    state = quantize.decode(quantize.encode({"w": weight, "b": torch.ones(3)}, ["w"]))
    assert torch.allclose(state["w"], values.float() * scale[:, None]) and torch.equal(state["b"], torch.ones(3))


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_dynamic_int8_directory_is_a_kiln_model(kind: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = cached_model(kind, tmp_path_factory)
    report = compress(source, tmp_path / "q", {"quantize": {"type": "dynamic"}}, **FAST)
    before, after = report["rows"][0], report["rows"][-1]
    assert after["size_bytes"] < before["size_bytes"]  # tiny models: safetensors headers weigh; digits MLP: 0.27×
    loaded = kiln.load(tmp_path / "q")
    assert isinstance(loaded, CompressedModel)
    weights = (tmp_path / "q" / "weights.safetensors").read_bytes()
    assert b"int8_scale" in weights and not list((tmp_path / "q").glob("*.pkl"))
    frame = frame_for(kind)
    metric = loaded.evaluate(frame.sample(frac=1.0, random_state=0))[after["metric"]]
    assert 0.0 <= metric <= 1.0
    assert abs(loaded.metrics_for(loaded.preprocessor.transform(frame))[after["metric"]] - metric) < 1e-9
    assert json.loads((tmp_path / "q" / "compression.json").read_text())["rows"][0]["variant"].startswith("original")


def test_pruning_zeroes_the_share_and_fine_tunes(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = cached_model("mlp", tmp_path_factory)
    report = compress(source, tmp_path / "p", {"prune": {"amount": 0.5, "fine_tune_epochs": 1}}, **FAST)
    assert len(report["fine_tune_history"]) == 1
    net = kiln.load(tmp_path / "p").net
    pruned = [m.weight for m in net.trunk if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in pruned) / sum(w.numel() for w in pruned)
    assert 0.45 <= zeros <= 0.55  # fine-tuning kept the zeros at zero
    assert report["rows"][-1]["nonzero_parameters"] < report["rows"][0]["nonzero_parameters"]


def test_onnxruntime_engine_writes_an_onnx_model(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = cached_model("mlp", tmp_path_factory)
    report = compress(source, tmp_path / "o", {"quantize": {"engine": "onnxruntime"}}, **FAST)
    assert [r["variant"] for r in report["rows"]][1] == "onnxruntime fp32"
    preds = load_onnx(tmp_path / "o").predict(frame_for("mlp").head(5))
    assert len(preds) == 5


def test_max_metric_drop_refuses(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    source = cached_model("mlp", tmp_path_factory)
    result = run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "r", "--prune", "0.95", "--max-metric-drop", "0", "-q")
    # the cached model is trained from a fixed seed: removing 95% of its weights lowers its test metric
    one_line_error(result, "compression refused", "max_metric_drop")
    assert not (tmp_path / "r").exists()


def test_bad_specs_are_one_line(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    source = cached_model("mlp", tmp_path_factory)
    one_line_error(run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "a"), "nothing to do")
    one_line_error(run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "a", "--prune", "1.5"), "compress.prune.amount")
    one_line_error(run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "a", "--quantize", "dynamic", "--engine", "tvm"),
                   "compress.quantize.engine")


def test_distillation_trains_a_smaller_student_on_the_one_trainer(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = cached_model("mlp", tmp_path_factory)
    spec = {"distill": {"student": {"model": {"type": "mlp", "hidden": [4]}, "trainer": {"epochs": 3}},
                        "temperature": 2.0, "alpha": 0.5, "compare_hard_labels": True}}
    report = compress(source, tmp_path / "d", spec, **FAST)
    teacher, plain, student = report["rows"]
    assert plain["variant"] == "same student, hard labels only" and student["variant"] == "distilled student"
    assert student["parameters"] < teacher["parameters"] and len(report["fine_tune_history"]) == 3
    loaded = kiln.load(tmp_path / "d")
    assert loaded.config.model.hidden == [4]
    assert abs(loaded.metrics_for(loaded.preprocessor.transform(frame_for("mlp")))["accuracy"]) <= 1.0


def test_example_compress_config_is_valid() -> None:
    from kiln.deploy.spec import load_spec

    examples = Path(__file__).resolve().parents[2] / "examples"
    for name in ("compress_digits.yaml", "digits_mlp_int8.yaml"):
        spec = load_spec(examples / name)
        assert spec.quantize is not None and spec.quantize.engine == "onnxruntime" and spec.max_metric_drop == 0.01
    assert kiln.api.load_task_config(examples / "digits_mlp_int8.yaml").model.hidden == [256, 128]  # the rest: a run config


def test_distill_data_trains_the_student_on_unlabelled_rows(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    from kiln.deploy.distill import SOFT, student_rows, with_teacher

    source = cached_model("mlp", tmp_path_factory)
    teacher = kiln.load(source)
    unlabelled = frame_for("mlp").drop(columns=["y"]).sample(n=120, random_state=3)
    unlabelled.to_csv(tmp_path / "unlabelled.csv", index=False)
    rows = with_teacher(teacher, teacher.preprocessor.outputs, student_rows(teacher, str(tmp_path / "unlabelled.csv")))
    assert len(rows) == 120 and set(rows.targets) == {"y", SOFT + "y"}
    predicted = teacher.predict(unlabelled)["y_prediction"].astype(str).to_numpy()  # rows without labels: the teacher's prediction
    assert (np.array(teacher.preprocessor.outputs[0].classes)[rows.targets["y"].long().numpy()] == predicted).all()
    spec = {"distill": {"student": {"model": {"type": "mlp", "hidden": [4]}, "trainer": {"epochs": 2}}, "data": str(tmp_path / "unlabelled.csv")}}
    report = compress(source, tmp_path / "d", spec, **FAST)
    assert report["rows"][-1]["variant"] == "distilled student" and len(report["fine_tune_history"]) == 2
    assert kiln.load(tmp_path / "d").config.model.hidden == [4]


def test_compress_section_of_a_training_config(tmp_path: Path, capsys, monkeypatch) -> None:
    import yaml

    frame_for("mlp").to_csv(tmp_path / "mlp.csv", index=False)
    config = {**CONFIGS["mlp"], "data": {"train": str(tmp_path / "mlp.csv"), "split": {"validation": 0.0, "test": 0.25, "seed": 1}},
              "trainer": trainer(3), "compress": {"quantize": {"type": "dynamic"}, "max_metric_drop": 1.0,
                                                   "measure": {"batch_sizes": [1, 64], "rows": 64, "repeats": 1}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    code, out, err = run_cli(capsys, monkeypatch, "train", tmp_path / "c.yaml", "-o", tmp_path / "run", "-q")
    assert code == 0, err
    assert "int8 dynamic" in out and f"compressed model: {tmp_path / 'run' / 'compressed'}" in out
    assert isinstance(kiln.load(tmp_path / "run" / "compressed"), CompressedModel)
    assert kiln.load(tmp_path / "run").config.model.hidden == [16, 8]  # the run's own model stays model/
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.count('<section id="compression">') == 1 and html.index("Compression") < html.index("<h2>Plots</h2>")
    for column in ("size KiB", "non-zero parameters", "ms/row @1", "ms/row @64", "rows/s @64", "test accuracy", "test loss"):
        assert column in html
    assert (tmp_path / "run" / "compressed" / "report.html").is_file()  # `kiln compress` alone: a page with the table


def test_bad_compress_section_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    import yaml

    config = {**CONFIGS["mlp"], "data": {"train": str(tmp_path / "mlp.csv")}, "compress": {"prune": {"amount": 2}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    one_line_error(run_cli(capsys, monkeypatch, "train", tmp_path / "c.yaml", "-o", tmp_path / "run"), "compress.prune.amount")
    assert not (tmp_path / "run").exists()


class _DictNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 3)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.layer(inputs["x"])


def test_activation_pruning_weighs_weights_by_their_inputs() -> None:
    from kiln.deploy.prune import apply_pruning
    from kiln.deploy.spec import PruneSpec

    net = _DictNet()
    with torch.no_grad():
        net.layer.weight.copy_(torch.tensor([[1.0, 0.2, 0.5, 0.3]] * 3))
    x = torch.tensor([[0.0, 10.0, 1.0, 0.0]] * 8)  # column 1 is large, columns 0 and 3 are silent
    apply_pruning(net, PruneSpec(amount=0.5, criterion="activation"), [{"x": x}])
    assert (net.layer.weight != 0).int().tolist() == [[0, 1, 1, 0]] * 3  # magnitude alone would keep columns 0 and 2


def test_activation_pruning_on_an_lstm(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = cached_model("bilstm_pool", tmp_path_factory)
    report = compress(source, tmp_path / "p", {"prune": {"amount": 0.5, "criterion": "activation", "calibration_rows": 64}}, **FAST)
    assert report["rows"][-1]["variant"] == "pruned 50% by activation"
    rnn = kiln.load(tmp_path / "p").net.encoders[0].rnns[0]
    for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse"):
        zeros = (getattr(rnn, name) == 0).float().mean(dim=1)
        assert torch.allclose(zeros, torch.full_like(zeros, 0.5), atol=0.07)  # half of every output row


def test_cli_prune_criterion(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    source = cached_model("mlp", tmp_path_factory)
    code, out, err = run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "a", "--prune", "0.5",
                             "--prune-criterion", "activation", "-q")
    assert code == 0 and "pruned 50% by activation" in out, err
    one_line_error(run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "b", "--prune", "0.5", "--prune-criterion", "size"),
                   "compress.prune.criterion")
