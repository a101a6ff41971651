"""The training loop: optimizer modes, batch modes, schedules, regularisation, stopping, resume."""

from __future__ import annotations

import math

import pytest
import torch

import kiln
from kiln.errors import KilnError


def _weights(model: kiln.Model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.net.state_dict().items()}


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_each_optimizer_reduces_loss(tabular_config, tmp_path, optimizer):
    lr = 0.05 if optimizer == "sgd" else 0.01
    model = kiln.train(tabular_config(optimizer=optimizer, learning_rate=lr, epochs=6), output=tmp_path / "run")
    losses = [row["train_loss"] for row in model.history]
    assert losses[-1] < losses[0]
    assert model.metrics["test"]["accuracy"] > 0.7


@pytest.mark.parametrize(("batch_size", "steps"), [("full", 1), (1, None), (32, None)])
def test_batch_modes_take_the_expected_number_of_steps(tabular_config, tmp_path, batch_size, steps):
    cfg = tabular_config(batch_size=batch_size, epochs=2)
    seen: list[int] = []
    kiln.train(cfg, output=tmp_path / "run", callbacks=[lambda t, row: seen.append(t.step)])
    rows = kiln.supervised.load_splits(kiln.supervised.load_supervised_config(cfg))[1]["rows"]["train"]
    expected = steps or math.ceil(rows / batch_size)
    assert seen == [expected, 2 * expected]


@pytest.mark.parametrize(
    ("schedule", "check"),
    [
        ({"type": "step", "step_size": 1, "gamma": 0.5}, lambda lrs: lrs[1] == pytest.approx(lrs[0] * 0.5)),
        ({"type": "cosine"}, lambda lrs: lrs[-1] < 1e-6 and lrs[0] < 0.01),
        ({"type": "linear_warmup", "warmup": 0.5}, lambda lrs: lrs[0] < max(lrs) == pytest.approx(0.01, rel=0.05) and lrs[-1] < 1e-3),
        ({"type": "none"}, lambda lrs: all(lr == 0.01 for lr in lrs)),
    ],
)
def test_learning_rate_schedules(tabular_config, tmp_path, schedule, check):
    model = kiln.train(tabular_config(lr_schedule=schedule), output=tmp_path / "run")
    lrs = [row["lr"] for row in model.history]
    assert check(lrs), lrs


def test_plateau_schedule_reduces_lr_when_validation_stalls(tabular_config, tmp_path):
    cfg = tabular_config(epochs=8, learning_rate=0.5, optimizer="sgd", lr_schedule={"type": "plateau", "patience": 0, "factor": 0.1})
    lrs = [row["lr"] for row in kiln.train(cfg, output=tmp_path / "run").history]
    assert min(lrs) < 0.5


def test_l1_and_l2_shrink_weights(tabular_config, tmp_path):
    def norm(**reg: float) -> float:
        model = kiln.train(tabular_config(epochs=6, restore_best=False, **reg), output=tmp_path / str(reg))
        return sum(p.abs().sum().item() for p in model.net.parameters() if p.dim() > 1)

    plain = norm()
    assert norm(l1=0.01) < plain * 0.8
    assert norm(l2=0.5) < plain * 0.9


def test_early_stopping_stops_and_restores_best_weights(tabular_config, tmp_path):
    cfg = tabular_config(epochs=40, learning_rate=0.05, early_stopping={"metric": "validation.loss", "patience": 2})
    model = kiln.train(cfg, output=tmp_path / "run")
    assert len(model.history) < 40
    best = min(row["validation_loss"] for row in model.history)
    assert model.metrics["validation"]["loss"] == pytest.approx(best, rel=1e-5)
    report = kiln.io.read_json(tmp_path / "run" / "data_report.json")
    assert report["stop_reason"].startswith("early_stopping")


def test_early_stopping_on_accuracy_uses_max_mode(tabular_config, tmp_path):
    cfg = tabular_config(epochs=30, early_stopping={"metric": "validation.accuracy", "patience": 3})
    model = kiln.train(cfg, output=tmp_path / "run")
    best = max(row["validation_accuracy"] for row in model.history)
    assert model.metrics["validation"]["accuracy"] == pytest.approx(best)


def test_unknown_early_stopping_metric_lists_valid_ones(tabular_config, tmp_path):
    with pytest.raises(KilnError, match="validation.accuracy"):
        kiln.train(tabular_config(early_stopping={"metric": "validation.acc"}), output=tmp_path / "run")


def test_convergence_stops_training(tabular_config, tmp_path):
    model = kiln.train(tabular_config(epochs=50, convergence_tol=0.05), output=tmp_path / "run")
    assert len(model.history) < 50


def test_divergence_is_a_clear_error(tmp_path):
    cfg = {
        "data": {"train": "sklearn:diabetes", "split": {"validation": 0.1, "test": 0.1}},
        "input_features": [{"name": c, "type": "numeric", "normalization": "none"} for c in ["bmi", "bp", "s5"]],
        "output_features": [{"name": "target", "type": "numeric", "normalization": "none"}],
        "model": {"type": "linear"},
        "trainer": {"epochs": 30, "batch_size": "full", "optimizer": "sgd", "momentum": 0.0, "learning_rate": 50.0},
    }
    with pytest.raises(KilnError, match="diverged"):
        kiln.train(cfg, output=tmp_path / "run")


class _Kill(Exception):
    pass


def _kill_after(epoch: int):
    def callback(trainer, row):
        if row["epoch"] == epoch:
            raise _Kill

    return callback


def test_interrupted_run_resumes_to_the_same_result(tabular_config, tmp_path):
    cfg = tabular_config(epochs=5, lr_schedule={"type": "cosine"})
    full = kiln.train(cfg, output=tmp_path / "full")
    with pytest.raises(_Kill):
        kiln.train(cfg, output=tmp_path / "killed", callbacks=[_kill_after(2)])
    resumed = kiln.train(cfg, resume=tmp_path / "killed")
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5]
    for key, value in _weights(full).items():
        assert torch.equal(value, _weights(resumed)[key]), key
    assert resumed.metrics["test"] == full.metrics["test"]


def test_cuda_device_without_cuda_is_a_clear_error(tabular_config, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(KilnError, match="CUDA is not available"):
        kiln.train(tabular_config(device="cuda"), output=tmp_path / "run")
