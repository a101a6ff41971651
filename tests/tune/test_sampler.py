"""The sampler's settings: TPE options, start-up trials scaled to the budget, the base config as the first
trial (`tune.start_from_base`), and the same trials again for the same config and seed."""

from __future__ import annotations

import warnings

import pytest
import yaml
from cli_helpers import one_line_error, run_cli

import kiln
from kiln.tuning.config import TuneConfig
from kiln.tuning.space import SearchSpace
from kiln.tuning.study import make_sampler

SPACE = {"trainer.learning_rate": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
         "model.hidden": {"type": "choice", "values": [[4], [8]]},
         "trainer.batch_size": {"type": "int", "low": 8, "high": 64, "step": 8},
         "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1}}


@pytest.mark.parametrize(("trials", "startup"), [(1, 2), (12, 2), (20, 3), (30, 5), (100, 10)])
def test_start_up_trials_scale_with_the_budget_unless_set(trials, startup):
    assert TuneConfig(trials=trials, parameters=SPACE).startup_trials == startup
    assert TuneConfig(trials=trials, sampler={"startup_trials": 2}, parameters=SPACE).startup_trials == 2


def test_tpe_options_reach_optunas_sampler():
    tune = TuneConfig(trials=20, sampler={"seed": 1, "multivariate": False, "ei_candidates": 7}, parameters=SPACE)
    sampler = make_sampler(tune, SearchSpace(tune))
    assert (sampler._n_startup_trials, sampler._multivariate, sampler._n_ei_candidates) == (3, False, 7)


def test_good_fraction_sets_how_many_trials_tpe_models_as_good():
    from kiln.tuning.study import good_trials

    tune = TuneConfig(trials=20, sampler={"good_fraction": 0.25}, parameters=SPACE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's deprecation of `gamma` stays inside kiln
        sampler = make_sampler(tune, SearchSpace(tune))
    assert [sampler._gamma(n) for n in (1, 4, 10, 19, 1000)] == [1, 1, 3, 5, 25]  # rounded up, at most 25
    assert good_trials(0.1, 19) == 2  # Optuna's own default fraction
    default = TuneConfig(trials=20, parameters=SPACE)
    assert default.sampler.good_fraction == 0.25 and make_sampler(default, SearchSpace(default))._gamma(10) == 3


def test_base_point_takes_the_values_inside_the_space_and_leaves_the_rest_to_the_sampler():
    space = SearchSpace(TuneConfig(parameters=SPACE))

    class Loaded:  # a validated config: its defaults fill what the raw config leaves out
        @staticmethod
        def model_dump(mode: str) -> dict:
            return {"trainer": {"learning_rate": 0.5, "batch_size": 32}, "model": {"hidden": [8], "dropout": 0.0}}

    raw = {"trainer": {"learning_rate": 0.01, "batch_size": 20}, "model": {"hidden": [8], "dropout": 0.25}}
    # 0.01 inside; 20 is off the int step; [8] is a choice (label "[8]"); 0.25 is off the float step
    assert space.base_point(raw, Loaded()) == {"trainer.learning_rate": 0.01, "model.hidden": "[8]"}
    assert space.base_point({}, Loaded()) == {"trainer.batch_size": 32, "model.hidden": "[8]", "model.dropout": 0.0}


def _search(config_for, **tune):
    cfg = config_for(trials=4, sampler={"type": "tpe", "seed": 5, "startup_trials": 2}, **tune)
    cfg["trainer"]["epochs"] = 2
    return cfg


def test_the_first_trial_is_the_base_config_and_the_same_seed_gives_the_same_trials(config_for, tmp_path, capsys, monkeypatch):
    cfg = _search(config_for)
    first = kiln.tune(cfg, output=tmp_path / "a").trials
    assert first["trainer.learning_rate"].iloc[0] == 0.01  # the base config's; its hidden [8] is not in the space
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out, err = run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "b")
    assert code == 0, err
    assert out.count("(the base config)") == 1 and "trial 0 (the base config) complete" in out
    second = kiln.tune(cfg, output=tmp_path / "c").trials
    columns = ["trainer.learning_rate", "model.hidden", "validation.loss"]
    assert first[columns].to_dict("list") == second[columns].to_dict("list")  # TPE (after 2 start-up trials) too

    off = kiln.tune(_search(config_for, start_from_base=False), output=tmp_path / "d").trials
    assert off["trainer.learning_rate"].iloc[0] != 0.01


@pytest.mark.parametrize(("tune", "facts"), [
    ({"sampler": {"type": "tpe", "ei_candidates": 0}}, ["tune.sampler.ei_candidates", "greater than or equal to 1"]),
    ({"sampler": {"type": "tpe", "startup_trials": -1}}, ["tune.sampler.startup_trials"]),
    ({"sampler": {"type": "tpe", "multivariate": "maybe"}}, ["tune.sampler.multivariate"]),
    ({"sampler": {"type": "tpe", "good_fraction": 1.5}}, ["tune.sampler.good_fraction", "less than 1"]),
    ({"sampler": {"type": "tpe", "good_fraction": 0}}, ["tune.sampler.good_fraction", "greater than 0"]),
    ({"start_from_base": "yes please"}, ["tune.start_from_base"]),
    ({"start_from_bse": True}, ["unknown key 'start_from_bse'", "did you mean 'start_from_base'?"]),
])
def test_bad_sampler_settings_are_one_line(config_for, tmp_path, capsys, monkeypatch, tune, facts):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config_for(**tune)))
    one_line_error(run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "out"), *facts)
