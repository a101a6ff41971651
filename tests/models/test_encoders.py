import pytest
import torch

from kiln.models.activations import ACTIVATIONS
from kiln.models.encoders import (
    FlattenEncoder,
    ImageCNNEncoder,
    TextBagEncoder,
    TextRNNEncoder,
    TextTransformerEncoder,
    activation,
)

VOCAB = 50


def _tokens() -> torch.Tensor:
    return torch.tensor([[5, 9, 3, 7, 0, 0], [4, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])


def _text_encoders() -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [
        TextBagEncoder(VOCAB, 8),
        TextRNNEncoder(VOCAB, 8, hidden=(16, 12)),
        TextRNNEncoder(VOCAB, 8, hidden=(10,), cell="gru", bidirectional=True),
        TextTransformerEncoder(VOCAB, d_model=16, heads=4, layers=2),
    ]


@pytest.mark.parametrize("index", range(4))
def test_text_shapes_and_empty_rows(index: int) -> None:
    enc = _text_encoders()[index].eval()
    out = enc(_tokens())
    assert out.shape == (3, enc.output_dim)
    assert torch.isfinite(out).all()


def test_rnn_output_dims() -> None:
    assert TextRNNEncoder(VOCAB, 8, hidden=(16, 12)).output_dim == 12
    assert TextRNNEncoder(VOCAB, 8, hidden=(10,), cell="gru", bidirectional=True).output_dim == 20
    assert TextRNNEncoder(VOCAB, 8, hidden=(6, 5), bidirectional=True)(_tokens()).shape == (3, 10)
    with pytest.raises(ValueError):
        TextRNNEncoder(VOCAB, cell="rnn")


@pytest.mark.parametrize("index", range(4))
def test_padding_invariance(index: int) -> None:
    enc = _text_encoders()[index].eval()
    seq = torch.tensor([[3, 8, 1, 4, 6]])
    short = torch.cat([seq, torch.zeros(1, 3, dtype=torch.long)], 1)
    long = torch.cat([seq, torch.zeros(1, 10, dtype=torch.long)], 1)
    torch.testing.assert_close(enc(short), enc(long), atol=1e-5, rtol=0)


@pytest.mark.parametrize("index", range(4))
def test_gradients_reach_embedding(index: int) -> None:
    enc = _text_encoders()[index].train()
    enc(_tokens()).pow(2).sum().backward()
    grad = enc.embedding.weight.grad
    assert grad is not None and grad[[5, 9, 4]].abs().sum() > 0
    assert torch.all(grad[0] == 0)  # padding row receives no gradient


@pytest.mark.parametrize(("shape", "expected"), [((4, 1, 8, 8), 16 * 2 * 2), ((2, 3, 28, 28), 16 * 7 * 7)])
def test_image_cnn(shape: tuple[int, int, int, int], expected: int) -> None:
    enc = ImageCNNEncoder(shape[1], shape[2], shape[3], channels=(8, 16))
    out = enc(torch.randn(*shape))
    assert enc.output_dim == expected and out.shape == (shape[0], expected)


def test_image_cnn_stops_pooling_when_too_small() -> None:
    enc = ImageCNNEncoder(1, 2, 2, channels=(4, 4, 4), activation="gelu", dropout=0.1)
    assert enc.output_dim == 4 and enc(torch.randn(3, 1, 2, 2)).shape == (3, 4)


def test_flatten() -> None:
    enc = FlattenEncoder((3, 4, 5))
    assert enc.output_dim == 60 and enc(torch.randn(2, 3, 4, 5)).shape == (2, 60)


def test_activation_lookup() -> None:
    assert set(ACTIVATIONS) == {"relu", "sigmoid", "tanh", "gelu", "leaky_relu", "elu", "silu"}
    assert isinstance(activation("silu"), torch.nn.SiLU)
    with pytest.raises(ValueError, match="relu"):
        activation("swish")
