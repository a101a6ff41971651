import math

import torch
from torch.nn import functional as F

from kiln.models.attention import (
    MultiHeadSelfAttention,
    SinusoidalPositionalEncoding,
    TransformerEncoderLayer,
    attention_weights,
    scaled_dot_product_attention,
)


def _qkv(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))


def test_matches_torch_sdpa_without_mask() -> None:
    q, k, v = _qkv()
    expected = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v), expected, atol=1e-5, rtol=0)


def test_matches_torch_sdpa_with_mask() -> None:
    q, k, v = _qkv(1)
    mask = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(2)) > 0.4
    mask[..., 0] = True  # no fully-masked rows: torch returns NaN for those
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask), expected, atol=1e-5, rtol=0)


def test_softmax_rows_sum_to_one_via_identity_values() -> None:
    q, k, _ = _qkv(3)
    eye = torch.eye(5).expand(2, 3, 5, 5)
    mask = torch.tensor([True, True, False, True, False])
    out = scaled_dot_product_attention(q, k, eye, mask)
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 3, 5))
    assert (out >= 0).all()
    assert torch.equal(out[..., ~mask], torch.zeros_like(out[..., ~mask]))
    torch.testing.assert_close(out, attention_weights(q, k, mask))


def test_fully_masked_rows_are_finite() -> None:
    q, k, v = _qkv(4)
    out = scaled_dot_product_attention(q, k, v, torch.zeros(1, 1, 1, 5, dtype=torch.bool))
    assert torch.isfinite(out).all()


def test_mhsa_ignores_appended_padding() -> None:
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(2, 4, 16)
    short = attn(x, torch.ones(2, 4, dtype=torch.bool))
    padded_x = torch.cat([x, torch.randn(2, 6, 16)], dim=1)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, :4] = True
    long = attn(padded_x, mask)
    torch.testing.assert_close(long[:, :4], short, atol=1e-5, rtol=0)


def test_positional_encoding_matches_formula() -> None:
    d = 6
    pe = SinusoidalPositionalEncoding(d, max_length=20)
    assert "pe" in dict(pe.named_buffers()) and not list(pe.parameters())
    out = pe(torch.zeros(1, 20, d))[0]
    for pos in (0, 3, 17):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert math.isclose(out[pos, 2 * i].item(), math.sin(angle), abs_tol=1e-5)
            assert math.isclose(out[pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-5)


def test_encoder_layer_shape_and_grad() -> None:
    layer = TransformerEncoderLayer(16, 4, 32, 0.1)
    x = torch.randn(3, 7, 16, requires_grad=True)
    out = layer(x, torch.ones(3, 7, dtype=torch.bool))
    assert out.shape == (3, 7, 16)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
