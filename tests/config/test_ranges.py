"""Every size, rate and seed in a config is range-checked by its schema: one line, never a traceback
or a silently useless model (issue 13's list of values that used to get through)."""

from __future__ import annotations

import copy

import pytest
from cli_helpers import one_line_error, run_cli

from kiln.errors import KilnError
from kiln.api import load_task_config

SUPERVISED = {"data": {"train": "x.csv"}, "input_features": [{"name": "n", "type": "numeric"}, {"name": "c", "type": "category"}],
              "output_features": [{"name": "y", "type": "binary"}], "model": {"type": "mlp"}, "trainer": {"epochs": 1}}
TEXT = {**SUPERVISED, "input_features": [{"name": "t", "type": "text"}], "model": {"type": "transformer"}}
GPT_CLS = {**TEXT, "model": {"type": "gpt"}}
RNN = {**TEXT, "model": {"type": "rnn"}}
LM = {"task": "language_modeling", "data": {"train": "x.txt"}, "model": {"type": "gpt"}}
MLM = {"task": "pretraining", "data": {"train": ["x.txt"]}, "model": {"type": "transformer"}}


def patched(base: dict, path: str, value: object) -> dict:
    config = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return config


CASES = [
    (TEXT, "model.heads", 3, "d_model (64) must be divisible by heads (3)"),
    (GPT_CLS, "model.heads", 3, "d_model (128) must be divisible by heads (3)"),
    (LM, "model.heads", 3, "must be divisible by heads"),
    (MLM, "model.d_model", 10, "must be divisible by heads"),
    (TEXT, "model.heads", 0, "model.heads"), (GPT_CLS, "model.heads", 0, "model.heads"), (LM, "model.heads", 0, "model.heads"),
    (TEXT, "model.layers", -1, "model.layers"), (TEXT, "model.ff_dim", 0, "model.ff_dim"),
    (SUPERVISED, "model.dropout", 1.5, "model.dropout"), (SUPERVISED, "model.dropout", -0.1, "model.dropout"),
    (SUPERVISED, "model.init_std", -1, "model.init_std"), (SUPERVISED, "model.hidden", [0], "model.hidden[0]"),
    (SUPERVISED, "model.hidden", [-4], "model.hidden[0]"),
    ({**SUPERVISED, "model": {"type": "mlp", "embedding_dim": 10**9}}, "trainer.epochs", 1, "model.embedding_dim"),
    ({**SUPERVISED, "model": {"type": "mlp", "embedding_dim": 0}}, "trainer.epochs", 1, "model.embedding_dim"),
    (RNN, "model.embedding_dim", 0, "model.embedding_dim"), (RNN, "model.rnn_hidden", [0], "model.rnn_hidden[0]"),
    (SUPERVISED, "input_features.1.embedding_dim", 10**9, "input_features[1].embedding_dim"),
    (SUPERVISED, "input_features.1.max_categories", 0, "max_categories"),
    (SUPERVISED, "input_features.1.max_categories", -1, "max_categories"),
    (TEXT, "input_features.0.max_length", 10**8, "input_features[0].max_length"),
    (TEXT, "input_features.0.max_length", 0, "input_features[0].max_length"),
    (TEXT, "input_features.0.vocab_size", 0, "input_features[0].vocab_size"),
    (TEXT, "input_features.0", {"name": "t", "type": "text", "tokenizer": "bpe", "vocab_size": 10**9}, "vocab_size"),
    (LM, "tokenizer", {"type": "bpe", "vocab_size": 1_000_000_000}, "tokenizer.vocab_size"),
    (MLM, "tokenizer", {"type": "word", "max_length": 10**8}, "tokenizer.max_length"),
    (SUPERVISED, "trainer.seed", 2**70, "trainer.seed"), (LM, "trainer", {"seed": 2**80}, "trainer.seed"),
    (SUPERVISED, "data.split", {"seed": 2**70}, "data.split.seed"),
    (SUPERVISED, "trainer.lr_schedule", {"type": "plateau", "factor": 5}, "lr_schedule.factor"),
    (SUPERVISED, "trainer.betas", [2, 3], "betas must each be in [0, 1)"),
    (SUPERVISED, "trainer.epochs", True, "epochs should be a number, not true"),
    (LM, "trainer", {"iterations": True}, "iterations should be a number, not true"),
    (SUPERVISED, "trainer.learning_rate", float("inf"), "finite"),
    (SUPERVISED, "input_features.0.noise", -1, "noise"),
]


@pytest.mark.parametrize(("base", "path", "value", "fact"), CASES, ids=[f"{c[1]}={c[2]!r}"[:60] for c in CASES])
def test_out_of_range_values_are_one_line(base, path, value, fact):
    with pytest.raises(KilnError) as info:
        load_task_config(patched(base, path, value))
    message = str(info.value)
    assert "\n" not in message and fact in message, message


def test_a_network_too_big_for_memory_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    """d_model 65536 validates but would take ~770 GiB to train: one line, no allocation attempted."""
    (tmp_path / "t.txt").write_text("some text to learn from. " * 50)
    config = tmp_path / "c.yaml"
    config.write_text(f"task: language_modeling\ndata: {{train: {tmp_path / 't.txt'}}}\n"
                      "model: {type: gpt, d_model: 65536, heads: 4, layers: 1, block_size: 8}\ntrainer: {iterations: 1}\n")
    line = one_line_error(run_cli(capsys, monkeypatch, "train", config, "-o", tmp_path / "run", "-q"), "parameters", "GiB", "make it smaller")
    assert "memory is available" in line
    assert not (tmp_path / "run" / "model" / "model.safetensors").exists()
