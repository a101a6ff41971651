"""Pooling over time and embedding dropout for the text RNN and Transformer encoders: shapes, padding
never changes the output, defaults reproduce the old encoders, configs validate and round-trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import kiln
from kiln.api import load_task_config
from kiln.errors import KilnError
from kiln.models.encoders import TextRNNEncoder, TextTransformerEncoder, pool_over_time

VOCAB = 40
SEQ = torch.tensor([[3, 8, 1, 4, 6], [7, 2, 0, 0, 0], [0, 0, 0, 0, 0]])


def _rnn(pool: str, **kw: object) -> TextRNNEncoder:
    torch.manual_seed(0)
    return TextRNNEncoder(VOCAB, 8, hidden=(6, 5), bidirectional=True, pool=pool, **kw).eval()  # type: ignore[arg-type]


def test_pool_over_time_ignores_masked_positions() -> None:
    seq = torch.tensor([[[1.0, -2.0], [3.0, -4.0], [99.0, 99.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(pool_over_time(seq, mask, "max"), torch.tensor([[3.0, -2.0]]))
    torch.testing.assert_close(pool_over_time(seq, mask, "mean"), torch.tensor([[2.0, -3.0]]))
    torch.testing.assert_close(pool_over_time(seq, mask, "max_mean"), torch.tensor([[3.0, -2.0, 2.0, -3.0]]))
    assert torch.equal(pool_over_time(seq, torch.zeros(1, 3, dtype=torch.bool), "max"), torch.zeros(1, 2))


@pytest.mark.parametrize(("pool", "width"), [("last", 10), ("max", 10), ("mean", 10), ("max_mean", 20)])
def test_rnn_pool_shapes_and_padding(pool: str, width: int) -> None:
    enc = _rnn(pool)
    out = enc(SEQ)
    assert enc.output_dim == width and out.shape == (3, width) and torch.isfinite(out).all()
    longer = torch.cat([SEQ, torch.zeros(3, 9, dtype=torch.long)], 1)
    torch.testing.assert_close(enc(longer), out, atol=1e-6, rtol=0)
    alone = enc(SEQ[1:2, :2])  # row 2 without any padding
    torch.testing.assert_close(alone, out[1:2], atol=1e-6, rtol=0)


def test_rnn_max_pool_is_the_max_of_the_real_outputs() -> None:
    enc = _rnn("max", embedding_dropout=0.5)  # eval: no dropout
    seq, _ = enc.rnns[1](enc.rnns[0](enc.embedding(SEQ[:1]))[0])
    torch.testing.assert_close(enc(SEQ[:1]), seq.amax(1), atol=1e-6, rtol=0)


def test_rnn_defaults_are_the_old_encoder() -> None:
    torch.manual_seed(0)
    old = TextRNNEncoder(VOCAB, 8, hidden=(6,), bidirectional=True).eval()
    assert old.pool == "last" and old.embedding_dropout.p == 0.0 and old.output_dim == 12
    h = old.rnns[0](old.embedding(SEQ[:1]))[1][0]
    torch.testing.assert_close(old(SEQ[:1]), torch.cat([h[-2], h[-1]], -1))


def test_embedding_dropout_only_in_training() -> None:
    enc = _rnn("mean", embedding_dropout=0.5)
    assert torch.equal(enc(SEQ), enc(SEQ))
    enc.train()
    torch.manual_seed(1)
    assert not torch.equal(enc(SEQ), enc.eval()(SEQ))


@pytest.mark.parametrize(("pool", "width"), [("mean", 16), ("max", 16), ("max_mean", 32)])
def test_transformer_pool_shapes_and_padding(pool: str, width: int) -> None:
    torch.manual_seed(0)
    enc = TextTransformerEncoder(VOCAB, d_model=16, heads=4, layers=1, pool=pool).eval()
    out = enc(SEQ)
    assert enc.output_dim == width and out.shape == (3, width) and torch.isfinite(out).all()
    torch.testing.assert_close(enc(torch.cat([SEQ, torch.zeros(3, 7, dtype=torch.long)], 1)), out, atol=1e-5, rtol=0)


def test_bad_pool_refused() -> None:
    with pytest.raises(ValueError, match="pool"):
        TextRNNEncoder(VOCAB, pool="sum")
    with pytest.raises(ValueError, match="pool"):
        TextTransformerEncoder(VOCAB, pool="last")


BASE = {"data": {"train": "x.csv"}, "input_features": [{"name": "t", "type": "text"}],
        "output_features": [{"name": "y", "type": "binary"}], "trainer": {"epochs": 1}}


@pytest.mark.parametrize(("model", "fact"), [
    ({"type": "rnn", "pool": "sum"}, "model.pool"),
    ({"type": "rnn", "embedding_dropout": 1.0}, "model.embedding_dropout"),
    ({"type": "rnn", "embedding_dropout": -0.1}, "model.embedding_dropout"),
    ({"type": "transformer", "pool": "last"}, "model.pool"),
])
def test_bad_values_are_one_line(model: dict, fact: str) -> None:
    with pytest.raises(KilnError) as info:
        load_task_config({**BASE, "model": model})
    message = str(info.value)
    assert fact in message and "\n" not in message


def test_old_model_json_loads_with_old_behaviour() -> None:
    config = load_task_config({**BASE, "model": {"type": "rnn"}})
    assert config.model.pool == "last" and config.model.embedding_dropout == 0.0
    assert load_task_config({**BASE, "model": {"type": "transformer"}}).model.pool == "mean"


def _frame() -> pd.DataFrame:
    good, bad = ["good fun film", "a great lovely plot", "fine"], ["bad dull film", "an awful boring plot", "poor"]
    return pd.DataFrame({"t": (good + bad) * 10, "y": ([1] * 3 + [0] * 3) * 10})


@pytest.mark.parametrize("model", [
    {"type": "rnn", "embedding_dim": 8, "rnn_hidden": [6], "bidirectional": True, "pool": "max_mean", "embedding_dropout": 0.2},
    {"type": "transformer", "d_model": 8, "heads": 2, "layers": 1, "pool": "max"},
])
def test_save_load_round_trip(model: dict, tmp_path: Path) -> None:
    config = {**BASE, "data": {"split": {"validation": 0.2, "seed": 0}}, "model": model,
              "trainer": {"epochs": 2, "batch_size": 16, "seed": 0}}
    trained = kiln.train(config, data=_frame(), output=tmp_path / "run")
    loaded = kiln.load(trained.run_dir)
    assert loaded.config.model.pool == model["pool"]
    pd.testing.assert_frame_equal(loaded.predict(_frame()), trained.predict(_frame()))
    data = trained.preprocessor.transform(_frame())
    for name, logits in trained._logits(data).items():
        torch.testing.assert_close(loaded._logits(data)[name], logits)
