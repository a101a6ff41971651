import math

import pytest
import torch
from torch import nn

from kiln.models.init import init_weights


def _model() -> nn.Module:
    return nn.Sequential(
        nn.Embedding(20, 8, padding_idx=0),
        nn.Linear(8, 16),
        nn.LayerNorm(16),
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
    )


def test_xavier_bounds_and_zero_biases() -> None:
    model = init_weights(_model(), "xavier")
    emb, lin, norm, conv, bn = model
    assert torch.all(lin.weight.abs() <= math.sqrt(6 / (8 + 16)))
    assert torch.all(conv.weight.abs() <= math.sqrt(6 / (3 * 9 + 4 * 9)))
    assert lin.weight.abs().max() > 0.5 * math.sqrt(6 / 24)
    assert torch.all(lin.bias == 0) and torch.all(conv.bias == 0)
    assert torch.all(emb.weight[0] == 0) and emb.weight[1:].abs().sum() > 0
    assert torch.all(norm.weight == 1) and torch.all(bn.weight == 1)


def test_gaussian_std() -> None:
    torch.manual_seed(0)
    lin = init_weights(nn.Linear(200, 200), "gaussian", std=0.05)
    assert abs(lin.weight.std().item() - 0.05) < 0.002
    assert torch.all(lin.bias == 0)
    emb = init_weights(nn.Embedding(10, 4, padding_idx=3), "gaussian")
    assert torch.all(emb.weight[3] == 0)


def test_default_leaves_weights_and_bad_scheme() -> None:
    lin = nn.Linear(4, 4)
    before = lin.weight.clone(), lin.bias.clone()
    init_weights(lin, "default")
    assert torch.equal(lin.weight, before[0]) and torch.equal(lin.bias, before[1])
    with pytest.raises(ValueError, match="xavier"):
        init_weights(lin, "he")
