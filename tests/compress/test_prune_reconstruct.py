"""`prune.criterion: reconstruct`: the activation mask, then each row's kept weights re-fit by least squares
to the dense layer's outputs; the re-fit lowers the layer's output error, keeps the exact sparsity, and the
saved directory is an ordinary kiln model."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from cli_helpers import one_line_error, run_cli
from deploy_models import cached_model, frame_for
from torch import nn
from torch.nn.utils import prune as torch_prune
from torch.nn.utils.rnn import pack_padded_sequence

import kiln
from kiln.deploy.common import split_frames
from kiln.deploy.compress import compress
from kiln.deploy.prune import apply_pruning
from kiln.deploy.spec import PruneSpec

FAST = {"batch_sizes": (1, 8), "timing_rows": 16, "timing_repeats": 1}


class _Layer(nn.Module):
    """One layer fed from a dict, as kiln networks are."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = inputs["x"]
        if isinstance(self.layer, nn.LSTM):
            packed = pack_padded_sequence(x, inputs["lengths"], batch_first=True, enforce_sorted=False)
            return self.layer(packed)[1][0][-1]  # the last real step's state
        return self.layer(x)


def _pruned(net: nn.Module, criterion: str, batches: list[dict[str, torch.Tensor]], scope: str = "layer") -> nn.Module:
    net = copy.deepcopy(net)
    for module, name in apply_pruning(net, PruneSpec(amount=0.5, criterion=criterion, scope=scope), batches):
        torch_prune.remove(module, name)
    return net


def _correlated(rows: int, width: int, seed: int) -> torch.Tensor:
    """Inputs whose columns are correlated (as real activations are), so the kept weights can stand in for the pruned."""
    mixing = torch.randn(3, width, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(rows, 3, generator=g) @ mixing + 0.1 * torch.randn(rows, width, generator=g)


@pytest.mark.parametrize("layer", ["linear", "conv", "lstm"])
def test_reconstruction_lowers_the_output_error_of_the_same_mask(layer: str) -> None:
    torch.manual_seed(0)
    if layer == "linear":
        net = _Layer(nn.Linear(10, 6))
        batches = [{"x": _correlated(64, 10, seed)} for seed in range(4)]
    elif layer == "conv":
        net = _Layer(nn.Conv2d(3, 4, 3, padding=1))
        channels = torch.tensor([1.0, -0.5, 2.0]).reshape(1, 3, 1, 1)  # three channels of one image, plus noise
        batches = [{"x": torch.randn(8, 1, 6, 6) * channels + 0.1 * torch.randn(8, 3, 6, 6)} for _ in range(4)]
    else:
        net = _Layer(nn.LSTM(6, 5, batch_first=True))
        batches = [{"x": _correlated(16 * 7, 6, seed).reshape(16, 7, 6), "lengths": torch.randint(2, 8, (16,))} for seed in range(4)]
    net.eval()
    masked, refit = _pruned(net, "activation", batches), _pruned(net, "reconstruct", batches)
    weights = [name for name, p in net.layer.named_parameters() if name.startswith("weight")]
    for name in weights:  # half of every output row (rounded) is zero; the same weights as by activation
        zeros = getattr(refit.layer, name) == 0
        if layer != "conv":  # (activation scores a Conv weight by its input channel's norm, reconstruct by its patch element's)
            assert torch.equal(zeros, getattr(masked.layer, name) == 0)
        per_row = zeros.reshape(len(zeros), -1)
        assert per_row.sum(1).eq(round(per_row.shape[1] / 2)).all()

    def error(pruned: nn.Module) -> float:
        with torch.no_grad():
            return sum(float((pruned(b) - net(b)).pow(2).sum()) for b in batches)

    assert error(refit) < 0.5 * error(masked)


class _TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(32, 32), nn.Linear(32, 8)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.second(self.first(inputs["x"]))


def test_global_scope_spreads_the_zeros_where_they_cost_least() -> None:
    torch.manual_seed(0)
    net = _TwoLayers().eval()
    with torch.no_grad():  # the second layer sees a rank-3 signal: its weights can stand in for each other
        net.first.weight.copy_(torch.randn(32, 3) @ torch.randn(3, 32) / 10)
    batches = [{"x": torch.randn(64, 32)} for _ in range(4)]
    spread = _pruned(net, "reconstruct", batches, "global")
    zeros = {name: int((getattr(spread, name).weight == 0).sum()) for name in ("first", "second")}
    assert zeros["second"] / 256 > 0.5 > zeros["first"] / 1024  # the cheap layer takes more than its half
    assert 0 <= sum(zeros.values()) - 0.5 * (1024 + 256) < 32  # half of all the weights, rounded up to whole weights per row


def test_reconstruct_on_a_trained_lstm_saves_an_ordinary_model(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    source = cached_model("lstm", tmp_path_factory)
    spec = {"prune": {"amount": 0.5, "criterion": "reconstruct", "calibration_rows": 64, "scope": "layer"}}
    report = compress(source, tmp_path / "r", spec, **FAST)
    before, after = report["rows"][0], report["rows"][-1]
    assert after["variant"] == "pruned 50% by activation + reconstruction"
    assert {p.name for p in (tmp_path / "r").iterdir()} >= {"weights.safetensors", "model.json"}
    assert not [p for p in (tmp_path / "r").iterdir() if p.suffix in {".pkl", ".pt", ".pth", ".bin"}]
    loaded = kiln.load(tmp_path / "r")
    for rnn in loaded.net.encoders[0].rnns:
        for name in ("weight_ih_l0", "weight_hh_l0"):
            assert (getattr(rnn, name) == 0).float().mean(1).eq(0.5).all()  # the exact share in every gate row
    original = kiln.load(source)
    assert not torch.equal(loaded.net.encoders[0].rnns[1].bias_ih_l0, original.net.encoders[0].rnns[1].bias_ih_l0)  # re-fit
    assert len(loaded.predict(frame_for("lstm").head(5))) == 5
    assert after["nonzero_parameters"] < before["nonzero_parameters"]
    test = split_frames(loaded)["test"]  # the model saved is the model measured
    assert loaded.evaluate(test)[after["metric"]] == pytest.approx(after["value"], abs=1e-9)


def test_cli_reconstruct(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    source = cached_model("mlp", tmp_path_factory)
    code, out, err = run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "a", "--prune", "0.5",
                             "--prune-criterion", "reconstruct", "-q")
    assert code == 0 and "pruned 50% by activation + reconstruction" in out, err
    one_line_error(run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "b", "--prune", "0.5",
                           "--prune-criterion", "refit"), "compress.prune.criterion")
    one_line_error(run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "s", "--prune", "0.5",
                           "--prune-criterion", "reconstruct", "--prune-scope", "row"), "compress.prune.scope")
    frame_for("mlp").head(20).to_csv(tmp_path / "d.csv", index=False)
    one_line_error(run_cli(capsys, monkeypatch, "compress", source, "-o", tmp_path / "c", "--prune", "0.5",
                           "--prune-criterion", "reconstruct", "--data", str(tmp_path / "d.csv")), "calibrates on the training split")


def test_calibration_rows_default_is_recorded() -> None:
    """The rows a criterion calibrates on are filled in when not given, so compression.json says how many were used."""
    from kiln.deploy.spec import load_spec

    rows = {c: load_spec(None, **{"prune.amount": 0.5, "prune.criterion": c}).prune.calibration_rows
            for c in ("magnitude", "activation", "reconstruct")}
    assert rows == {"magnitude": None, "activation": 512, "reconstruct": 2048}
    assert load_spec(None, **{"prune.amount": 0.5, "prune.criterion": "reconstruct"}).prune.model_dump()["calibration_rows"] == 2048
