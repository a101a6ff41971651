"""engine: ray runs the trials on Ray Tune and agrees with the embedded engine; missing Ray or resources are one line."""

from __future__ import annotations

import sys

import pytest
import yaml
from cli_helpers import one_line_error, run_cli

import kiln

GRID = {"trainer.learning_rate": {"type": "choice", "values": [0.003, 0.03, 0.3]}}


@pytest.mark.slow  # a Ray cluster start and a Ray actor per trial: about a minute here
def test_ray_picks_the_same_best_trial_as_the_local_engine_on_a_fixed_grid(config_for, tmp_path, ray_cluster):
    local = kiln.tune(config_for(GRID, trials=3, sampler={"type": "grid", "seed": 0}), output=tmp_path / "local")
    cfg = config_for(GRID, trials=3, sampler={"type": "grid", "seed": 0}, engine="ray", parallel=2,
                     resources_per_trial={"cpu": 1})
    remote = kiln.tune(cfg, output=tmp_path / "ray")
    assert remote.summary["engine"] == "ray" and remote.summary["complete"] == 3
    assert remote.best_params == local.best_params
    assert remote.best_value == pytest.approx(local.best_value, rel=1e-5)
    assert sorted(remote.trials["trainer.learning_rate"]) == [0.003, 0.03, 0.3]
    assert (tmp_path / "ray" / "best" / "model" / "model.json").is_file()


@pytest.mark.slow  # needs the Ray cluster (about 15 s to start here)
def test_ray_resources_that_the_cluster_cannot_meet_are_one_line(config_for, tmp_path, capsys, monkeypatch, ray_cluster):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config_for(GRID, engine="ray", resources_per_trial={"cpu": 64})))
    one_line_error(run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "out"), "tune.resources_per_trial.cpu", "64")


def test_missing_ray_is_one_line(config_for, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config_for(GRID, engine="ray")))
    one_line_error(run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "out"), "needs Ray", "kiln[ray]")


@pytest.mark.slow  # needs the Ray cluster
def test_ray_starts_from_the_base_config_too(config_for, tmp_path, ray_cluster):
    space = {"trainer.learning_rate": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}
    cfg = config_for(space, trials=2, engine="ray", sampler={"type": "random", "seed": 3})
    cfg["trainer"]["epochs"] = 1
    trials = kiln.tune(cfg, output=tmp_path / "ray").trials
    assert trials["trainer.learning_rate"].iloc[0] == 0.01 and trials["trainer.learning_rate"].iloc[1] != 0.01
