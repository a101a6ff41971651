"""Config loading: defaults, ${VAR} expansion, relative paths, validation messages."""

from __future__ import annotations

import pytest

from kiln.supervised.config import load_supervised_config
from kiln.errors import KilnError

BASE = {"input_features": [{"name": "a", "type": "numeric"}], "output_features": [{"name": "y", "type": "binary"}]}


def test_defaults_follow_the_documented_values():
    cfg = load_supervised_config({"data": {"train": "x.csv"}, **BASE})
    assert cfg.model.type == "mlp" and cfg.trainer.optimizer == "adam"
    assert (cfg.data.split.validation, cfg.data.split.test, cfg.data.split.seed) == (0.1, 0.2, 42)
    assert cfg.preprocessing.missing.numeric == "median"


def test_env_vars_expand_and_kiln_data_has_a_default(monkeypatch):
    monkeypatch.setenv("MYDIR", "/srv/data")
    monkeypatch.delenv("KILN_DATA", raising=False)
    cfg = load_supervised_config({"data": {"train": "${MYDIR}/t.csv", "test": "${KILN_DATA}/titanic/train.csv"}, **BASE})
    assert cfg.data.train == "/srv/data/t.csv"
    assert cfg.data.test == "../shared/data/titanic/train.csv"


@pytest.mark.parametrize(("patch", "message"), [
    ({"trainer": {"epoch": 3}}, "unknown key 'epoch' (did you mean 'epochs'?)"),
    ({"input_features": [{"name": "a", "type": "numerc"}]}, "unknown feature type 'numerc' (did you mean 'numeric'?)"),
    ({"model": {"type": "mpl"}}, "(did you mean 'mlp'?)"),
    ({"trainer": {"optimizer": "adamm"}}, "trainer.optimizer: 'adamm' is not allowed (did you mean 'adam'?)"),
    ({"output_features": [{"name": "t", "type": "text"}]}, "cannot be an output"),
    ({"model": {"type": "cnn", "chanels": [8]}}, "did you mean 'channels'"),
    ({"data": {"train": "x", "split": {"validation": 0.6, "test": 0.5}}}, "validation + test must be below 1"),
    ({"trainer": {"batch_size": 0}}, "batch_size must be >= 1"),
])
def test_validation_errors_name_the_field_and_the_fix(patch, message):
    with pytest.raises(KilnError) as info:
        load_supervised_config({**BASE, **patch})
    assert message in str(info.value)
    assert "\n" not in str(info.value)
