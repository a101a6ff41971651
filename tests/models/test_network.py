"""Model types assemble the right network for their features, and refuse features they cannot take."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.supervised.config import load_supervised_config
from kiln.data.preprocessor import Preprocessor
from kiln.errors import KilnError
from kiln.models import build_network

FRAME = pd.DataFrame({
    "num": np.linspace(0, 1, 12),
    "cat": list("abcabcabcabc"),
    "text": ["good film", "bad film", "fine", "awful plot twist"] * 3,
    "img": [np.eye(8, dtype="float32") * i for i in range(12)],
    "y": [0, 1] * 6,
})


def network(inputs: list[dict], model: dict):
    cfg = load_supervised_config({"input_features": inputs, "output_features": [{"name": "y", "type": "binary"}], "model": model})
    pre = Preprocessor(cfg).fit(FRAME)
    return build_network(cfg.model, pre.inputs, pre.outputs), pre.transform(FRAME)


@pytest.mark.parametrize(("inputs", "model"), [
    ([{"name": "num", "type": "numeric"}, {"name": "cat", "type": "category"}], {"type": "linear"}),
    ([{"name": "num", "type": "numeric", "noise": 0.1}, {"name": "text", "type": "text"}], {"type": "mlp", "init": "xavier"}),
    ([{"name": "img", "type": "image", "augmentation": {"flip": True}}, {"name": "num", "type": "numeric"}], {"type": "cnn", "channels": [4]}),
    ([{"name": "text", "type": "text"}], {"type": "rnn", "rnn_hidden": [8, 4], "embedding_dim": 8}),
    ([{"name": "text", "type": "text"}, {"name": "cat", "type": "category"}], {"type": "transformer", "d_model": 8, "heads": 2, "layers": 1}),
])
def test_each_model_type_trains_on_its_features(inputs, model):
    net, data = network(inputs, model)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        logits = net(data.inputs)["y"].squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, data.targets["y"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_linear_model_is_logistic_regression():
    net, _ = network([{"name": "num", "type": "numeric"}, {"name": "cat", "type": "category"}], {"type": "linear"})
    linear_layers = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear_layers) == 1 and linear_layers[0].in_features == 1 + 4  # numeric + one-hot(unseen, a, b, c)


@pytest.mark.parametrize(("inputs", "model", "message"), [
    ([{"name": "num", "type": "numeric"}], {"type": "cnn"}, "needs an image input feature or an audio input feature or a text"),
    ([{"name": "img", "type": "image"}, {"name": "text", "type": "text"}], {"type": "rnn"}, "does not take image inputs; use cnn, linear, mlp"),
    ([{"name": "num", "type": "numeric"}], {"type": "transformer"}, "needs a text input"),
])
def test_model_type_that_does_not_fit_the_features_is_refused(inputs, model, message):
    with pytest.raises(KilnError, match=message):
        network(inputs, model)


def test_linear_model_refuses_hidden_layers():
    with pytest.raises(KilnError, match="no hidden layers"):
        load_supervised_config({"input_features": [{"name": "num", "type": "numeric"}], "output_features": [{"name": "y", "type": "binary"}],
                     "model": {"type": "linear", "hidden": [4]}})


def test_category_one_hot_rows_match_one_hot_and_are_not_saved() -> None:
    from kiln.models.base import CategoryEncoder

    encoder = CategoryEncoder(5)
    ids = torch.tensor([0, 4, 2, 2, 1])
    assert torch.equal(encoder(ids), torch.nn.functional.one_hot(ids, 5).float())
    assert encoder(ids).dtype == torch.float32 and encoder.state_dict() == {}  # a fixed table, not a weight
    embedded = CategoryEncoder(40)
    assert embedded.one_hot is None and embedded(ids).shape == (5, 16)
