"""Bad search configs are one line and exit code 2, before any trial runs."""

from __future__ import annotations

import pytest
import yaml
from cli_helpers import one_line_error, run_cli


@pytest.mark.parametrize(
    ("parameters", "tune", "facts"),
    [
        ({"trainer.learning_rat": {"type": "float", "low": 0.001, "high": 0.1}}, {},
         ["tune.parameters: trainer.learning_rat: unknown key 'learning_rat'", "did you mean 'learning_rate'?"]),
        ({"traner.epochs": {"type": "int", "low": 1, "high": 3}}, {}, ["tune.parameters: traner", "did you mean 'trainer'?"]),
        ({"model.dropout": {"type": "float", "low": 0.1, "high": 1.5}}, {}, ["tune.parameters: model.dropout", "1.5"]),
        ({"trainer.learning_rate": {"type": "float", "low": 0.1, "high": 0.01}}, {}, ["tune.parameters.trainer.learning_rate", "low (0.1) must be below high (0.01)"]),
        ({"trainer.learning_rate": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, {}, ["log: true needs low > 0"]),
        ({"trainer.batch_size": {"type": "choice", "values": []}}, {}, ["tune.parameters.trainer.batch_size.values"]),
        ({"trainer.batch_size": {"type": "choise", "values": [8]}}, {}, ["unknown parameter type 'choise'", "did you mean 'choice'?"]),
        ({"trainer.optimizer": {"type": "choice", "values": ["adam", "adamm"]}}, {}, ["tune.parameters: trainer.optimizer: 'adamm' is not allowed", "did you mean 'adam'?"]),
        ({"trainer.epochs.x": {"type": "int", "low": 1, "high": 2}}, {}, ["tune.parameters: trainer.epochs.x: 'epochs' is not a section"]),
        ({"model.dropout": {"type": "float", "low": 0.0, "high": 0.5}}, {"sampler": {"type": "grid"}}, ["grid sampler needs a step"]),
        (None, {"metric": "val.loss"}, ["tune.metric", "validation.<name>"]),
        (None, {"sampler": {"type": "tpee"}}, ["tune.sampler.type", "did you mean 'tpe'?"]),
        (None, {"engin": "ray"}, ["tune.engin: unknown key 'engin'", "did you mean 'engine'?"]),
    ],
)
def test_bad_search_is_one_line_before_any_trial(config_for, tmp_path, capsys, monkeypatch, parameters, tune, facts):
    cfg = config_for(parameters, **tune)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    one_line_error(run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "out"), *facts)
    assert not (tmp_path / "out" / "study.db").exists() and not (tmp_path / "out" / "trials").exists()


def test_no_tune_section_no_validation_split_and_resume_without_a_search(config_for, tmp_path, capsys, monkeypatch):
    cfg = config_for()
    plain = {k: v for k, v in cfg.items() if k != "tune"}
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(plain))
    one_line_error(run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "a"), "no tune: section")
    cfg["data"]["split"]["validation"] = 0.0
    path.write_text(yaml.safe_dump(cfg))
    one_line_error(run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "b"), "tune.metric is validation.loss",
                   "no validation data")
    one_line_error(run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "c", "--resume"), "cannot resume", "holds no kiln search")


def test_a_tune_section_is_validated_but_ignored_by_kiln_train(config_for, tmp_path, capsys, monkeypatch):
    cfg = config_for()
    cfg["trainer"]["epochs"] = 1
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out, err = run_cli(capsys, monkeypatch, "train", path, "-o", tmp_path / "run", "-q")
    assert code == 0, err
    cfg["tune"]["trials"] = 0
    path.write_text(yaml.safe_dump(cfg))
    one_line_error(run_cli(capsys, monkeypatch, "train", path, "-o", tmp_path / "run2", "-q"), "tune.trials")
