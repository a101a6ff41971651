"""Pruning really happens through the Trainer callback; a trial that raises is failed (with its error), never pruned."""

from __future__ import annotations

import pandas as pd

import kiln

GOOD = [0.01, 0.03, 0.1, 0.3]
DIVERGING = [3.0, 30.0, 1.0e3, 1.0e10]  # SGD on a linear model: the loss grows (pruned) or overflows (a divergence error)


def test_half_the_learning_rates_diverge_pruning_happens_and_failures_keep_their_error(config_for, tmp_path):
    cfg = config_for({"trainer.learning_rate": {"type": "choice", "values": GOOD + DIVERGING}}, trials=8,
                     sampler={"type": "grid", "seed": 0}, pruner={"type": "median", "startup_trials": 1, "warmup_epochs": 0})
    cfg["model"]["hidden"] = []
    cfg["trainer"]["epochs"] = 4
    result = kiln.tune(cfg, output=tmp_path / "search")
    trials = result.trials
    assert len(trials) == 8 and result.summary["pruned"] > 0
    pruned = trials[trials["state"] == "pruned"]
    failed = trials[trials["state"] == "failed"]
    assert (pruned["epochs"] < 4).all() and (pruned["error"].fillna("") == "").all()
    assert len(failed) > 0 and failed["error"].str.contains("diverged").all()  # the Trainer's own divergence error
    assert set(failed["trainer.learning_rate"]) <= set(DIVERGING)
    assert result.best_params["trainer.learning_rate"] in GOOD
    saved = pd.read_csv(tmp_path / "search" / "trials.csv")
    assert saved["state"].tolist() == trials["state"].tolist()
    assert not (tmp_path / "search" / "trials" / f"{int(pruned['trial'].iloc[0]):04d}").exists()  # pruned runs are removed
