"""The n-gram bag encoder: a weighted sum of bucket embeddings, padding ignored, learned weights,
n-gram dropout in training only, and networks that concatenate it with other inputs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kiln.data.preprocessor import Preprocessor
from kiln.errors import KilnError
from kiln.models import build_network
from kiln.models.ngram import NgramBagEncoder
from kiln.supervised.config import load_supervised_config


def _bag() -> torch.Tensor:
    ids = torch.tensor([[3.0, 5.0, 0.0], [7.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    weights = torch.tensor([[0.6, 0.8, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    return torch.stack([ids, weights], dim=1)


def test_weighted_sum_of_bucket_embeddings() -> None:
    torch.manual_seed(0)
    encoder = NgramBagEncoder(10, 4).eval()
    assert not encoder.table.weight.any()  # starts at zero
    torch.nn.init.normal_(encoder.table.weight)
    out = encoder(_bag())
    table = encoder.table.weight
    torch.testing.assert_close(out[0], 0.6 * table[3] + 0.8 * table[5])
    torch.testing.assert_close(out[1], table[7])
    assert torch.equal(out[2], torch.zeros(4))  # an empty text
    assert out.shape == (3, 4) and encoder.output_dim == 4


def test_learned_weights_are_a_softmax_over_present_ngrams() -> None:
    encoder = NgramBagEncoder(10, 4, learned_weights=True).eval()
    torch.nn.init.normal_(encoder.table.weight)
    with torch.no_grad():
        encoder.scores.weight[3] = 2.0
    out = encoder(_bag())
    table = encoder.table.weight
    p3 = torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + 1)
    torch.testing.assert_close(out[0], p3 * table[3] + (1 - p3) * table[5])
    assert torch.equal(out[2], torch.zeros(4))  # no n-grams: zeros, not NaN


def test_dropout_drops_ngrams_in_training_only() -> None:
    torch.manual_seed(0)
    encoder = NgramBagEncoder(10, 4, dropout=0.5)
    torch.nn.init.normal_(encoder.table.weight)
    bag = _bag().repeat(64, 1, 1)
    encoder.eval()
    evaluated = encoder(bag)
    assert torch.equal(evaluated, encoder(bag))
    encoder.train()
    trained = encoder(bag)
    assert not torch.allclose(trained, evaluated)
    rows = trained[1::3]  # the one-n-gram rows: either dropped (0) or scaled by 1 / (1 - p)
    scale = rows[:, 0] / evaluated[1, 0]
    assert set(torch.round(scale, decimals=4).tolist()) <= {0.0, 2.0}


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"name": ["Mr. John Smith", "Mrs. Ann Lee", "Miss Kate Doe", "Master Tom Ray"] * 5,
                         "age": [30.0, 40.0, 9.0, 4.0] * 5, "y": [0, 1, 1, 1] * 5})


@pytest.mark.parametrize("model", [{"type": "linear", "embedding_dim": 6}, {"type": "mlp", "hidden": [5], "embedding_dim": 6}])
def test_concatenated_with_numeric_inputs(model: dict) -> None:
    config = load_supervised_config({
        "input_features": [{"name": "name", "type": "text", "encoder": "ngram", "ngram": {"word": [1], "char": [2], "buckets": 512}},
                           {"name": "age", "type": "numeric"}],
        "output_features": [{"name": "y", "type": "binary"}], "model": model})
    pre = Preprocessor(config).fit(_frame())
    net = build_network(config.model, pre.inputs, pre.outputs)
    assert isinstance(net.encoders[0], NgramBagEncoder) and net.encoders[0].table.num_embeddings == 512
    data = pre.transform(_frame())
    logits = net(data.inputs)["y"]
    assert logits.shape == (20, 1)
    widths = sum(e.output_dim for e in net.encoders)
    assert widths == 6 + 1


def test_a_model_type_without_the_encoder_refuses_at_build_time() -> None:
    from kiln.models.base import MODELS, build_encoder

    class Fitted:
        type, name = "text", "t"

        def describe(self) -> dict:
            return {"encoder": "ngram", "buckets": 16, "width": 2, "learned_weights": False, "dropout": 0.0}

    with pytest.raises(KilnError, match="model type 'rnn' cannot take encoder: ngram text inputs; use cnn, linear, mlp"):
        build_encoder(MODELS.get("rnn")(), None, Fitted())  # type: ignore[arg-type]
