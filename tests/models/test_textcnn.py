"""The `cnn` model type's text encoder: a Kim-style CNN whose max-pool never sees pure padding."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kiln.api import load_task_config
from kiln.data.preprocessor import Preprocessor
from kiln.errors import KilnError
from kiln.models import build_network
from kiln.models.textcnn import TextCNNEncoder, TrimmedTextCNN

VOCAB = 30


@pytest.fixture(autouse=True)
def _own_rng():
    with torch.random.fork_rng():  # the seeds set here do not leak into other test files
        yield


def _padded(tokens: list[int], width: int) -> torch.Tensor:
    return torch.tensor([tokens + [0] * (width - len(tokens))])


def test_output_width_and_short_rows() -> None:
    enc = TextCNNEncoder(VOCAB, 8, kernel_sizes=(2, 3, 5), filters=4).eval()
    x = torch.tensor([[5, 0, 0, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8, 9], [0] * 7])  # one token < widest kernel; empty
    out = enc(x)
    assert enc.output_dim == 12 and out.shape == (3, 12) and torch.isfinite(out).all()


def test_padding_never_wins_the_max() -> None:
    """tanh of a window wholly on padding is tanh(bias) = 0 here, above every real window (all negative)."""
    enc = TextCNNEncoder(VOCAB, 4, kernel_sizes=(2, 3), filters=3, activation_name="tanh").eval()
    with torch.no_grad():
        enc.embedding.weight[1:] = 1.0
        for conv in enc.convs:
            conv.weight.fill_(-1.0)
            conv.bias.zero_()
    out = enc(_padded([3, 4, 5], 20))
    assert (out < -0.9).all()  # padding-only windows (value 0) were masked out


@pytest.mark.parametrize("width", [4, 9, 40])
def test_output_does_not_depend_on_padding_length(width: int) -> None:
    torch.manual_seed(0)
    enc = TextCNNEncoder(VOCAB, 6, kernel_sizes=(1, 2, 4), filters=5).eval()
    exact = enc(torch.tensor([[3, 9, 4, 7]]))  # no padding at all
    torch.testing.assert_close(enc(_padded([3, 9, 4, 7], width)), exact)


def test_trimmed_variant_matches_the_full_one() -> None:
    torch.manual_seed(0)
    full = TextCNNEncoder(VOCAB, 6, kernel_sizes=(2, 3), filters=5).eval()
    trimmed = TrimmedTextCNN(VOCAB, 6, kernel_sizes=(2, 3), filters=5).eval()
    trimmed.load_state_dict(full.state_dict())
    x = torch.cat([_padded([3, 4, 5], 30), _padded([7, 8], 30)])
    torch.testing.assert_close(trimmed(x), full(x))


def test_embedding_dropout_only_in_training() -> None:
    enc = TextCNNEncoder(VOCAB, 8, filters=4, embedding_dropout=0.5)
    x = _padded([3, 4, 5, 6, 7], 8)
    enc.eval()
    assert torch.equal(enc(x), enc(x))
    enc.train()
    torch.manual_seed(0)
    assert not torch.equal(enc(x), enc.eval()(x))


def test_cnn_model_type_trains_on_text() -> None:
    frame = pd.DataFrame({"text": ["good fun film", "bad dull plot", "great", "awful boring"] * 6, "y": [1, 0, 1, 0] * 6})
    cfg = load_task_config({"data": {"train": "x.csv"}, "input_features": [{"name": "text", "type": "text", "max_length": 10}],
                            "output_features": [{"name": "y", "type": "binary"}],
                            "model": {"type": "cnn", "embedding_dim": 8, "text_kernel_sizes": [1, 2], "text_filters": 4, "hidden": [4]}})
    pre = Preprocessor(cfg).fit(frame)
    net, data = build_network(cfg.model, pre.inputs, pre.outputs), pre.transform(frame)
    assert isinstance(net.encoders[0], TrimmedTextCNN) and net.encoders[0].output_dim == 8
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(data.inputs)["y"].squeeze(-1), data.targets["y"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert net(data.inputs)["y"].shape == (24, 1) and losses[-1] < 0.5 * losses[0]


BASE = {"data": {"train": "x.csv"}, "input_features": [{"name": "t", "type": "text"}],
        "output_features": [{"name": "y", "type": "binary"}], "trainer": {"epochs": 1}}


@pytest.mark.parametrize(("model", "fact"), [
    ({"type": "cnn", "text_kernel_sizes": []}, "model.text_kernel_sizes"),
    ({"type": "cnn", "text_kernel_sizes": [0, 3]}, "model.text_kernel_sizes"),
    ({"type": "cnn", "text_filters": 0}, "model.text_filters"),
    ({"type": "cnn", "embedding_dropout": 1.0}, "model.embedding_dropout"),
    ({"type": "cnn", "embedding_dim": 0}, "model.embedding_dim"),
])
def test_bad_values_are_one_line(model: dict, fact: str) -> None:
    with pytest.raises(KilnError) as info:
        load_task_config({**BASE, "model": model})
    message = str(info.value)
    assert fact in message and "\n" not in message


def test_an_ngram_bag_beside_the_cnn() -> None:
    from kiln.models.ngram import NgramBagEncoder

    frame = pd.DataFrame({"text": ["good fun film", "bad dull plot"] * 6, "title": ["fun", "dull"] * 6, "y": [1, 0] * 6})
    cfg = load_task_config({"data": {"train": "x.csv"}, "output_features": [{"name": "y", "type": "binary"}],
                            "input_features": [{"name": "text", "type": "text", "max_length": 6},
                                               {"name": "title", "type": "text", "encoder": "ngram", "ngram": {"word": [1], "buckets": 64}}],
                            "model": {"type": "cnn", "embedding_dim": 4, "text_filters": 3, "ngram_dim": 5}})
    pre = Preprocessor(cfg).fit(frame)
    net = build_network(cfg.model, pre.inputs, pre.outputs)
    assert isinstance(net.encoders[1], NgramBagEncoder) and net.encoders[1].output_dim == 5
    assert net(pre.transform(frame).inputs)["y"].shape == (12, 1)
