"""Per-feature input encoders mapping raw tensors to (batch, output_dim) features."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from kiln.models.activations import activation
from kiln.models.attention import SinusoidalPositionalEncoding, TransformerEncoderLayer

_activation = activation  # alias: ImageCNNEncoder's ``activation`` argument shadows the function


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x (batch, seq, dim) over positions where mask (batch, seq) is True; 0 if none."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class TextBagEncoder(nn.Module):
    """Masked mean of token embeddings (token 0 = padding)."""

    def __init__(self, vocab_size: int, embedding_dim: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.output_dim = embedding_dim

    def forward(self, x: Tensor) -> Tensor:
        return _masked_mean(self.embedding(x), x != 0)


RNN_POOLS = ("last", "max", "mean", "max_mean")
TEXT_POOLS = ("mean", "max", "max_mean")


def pool_over_time(seq: Tensor, mask: Tensor, pool: str) -> Tensor:
    """Pool per-token outputs (batch, seq, dim) over the positions where mask (batch, seq) is True:
    `mean`, `max`, or `max_mean` (both, concatenated). Padding never reaches the result."""
    pooled = []
    if pool in ("max", "max_mean"):
        peak = seq.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        pooled.append(torch.nan_to_num(peak, neginf=0.0))  # a row with no real position pools to 0
    if pool in ("mean", "max_mean"):
        pooled.append(_masked_mean(seq, mask))
    return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=-1)


def length_mask(lengths: Tensor, width: int) -> Tensor:
    """(batch, width) True at positions before each row's length."""
    return torch.arange(width, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class TextRNNEncoder(nn.Module):
    """Embedding (+ dropout) followed by stacked LSTM/GRU layers over packed sequences.

    One recurrent module per entry of ``hidden``; output is, by ``pool``, the final hidden state of
    the last layer (``last``) or its per-token outputs pooled over each row's real tokens (``max``,
    ``mean``, ``max_mean``); both directions concatenated when bidirectional.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden: Sequence[int] = (128,),
        cell: str = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        pool: str = "last",
        embedding_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        cells = {"lstm": nn.LSTM, "gru": nn.GRU}
        if cell not in cells or not hidden or pool not in RNN_POOLS:
            raise ValueError(f"cell must be one of {sorted(cells)}, pool one of {list(RNN_POOLS)} and hidden non-empty")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        dirs = 2 if bidirectional else 1
        sizes = [embedding_dim] + [h * dirs for h in hidden[:-1]]
        self.rnns = nn.ModuleList(
            cells[cell](n_in, h, batch_first=True, bidirectional=bidirectional) for n_in, h in zip(sizes, hidden)
        )
        self.dropout = nn.Dropout(dropout)
        self.bidirectional = bidirectional
        self.pool = pool
        self.output_dim = hidden[-1] * dirs * (2 if pool == "max_mean" else 1)

    def forward(self, x: Tensor) -> Tensor:
        lengths = (x != 0).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding_dropout(self.embedding(x)), lengths, batch_first=True, enforce_sorted=False)
        final: Tensor | None = None
        for i, rnn in enumerate(self.rnns):  # layer to layer the sequence stays packed: no re-padding, no re-sorting
            if i:
                packed = packed._replace(data=self.dropout(packed.data))
            packed, state = rnn(packed)
            h_n = state[0] if isinstance(state, tuple) else state
            final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.bidirectional else h_n[-1]
        assert final is not None
        if self.pool == "last":
            return final
        out, _ = nn.utils.rnn.pad_packed_sequence(packed, batch_first=True, total_length=x.size(1))
        return pool_over_time(out, length_mask(lengths.to(x.device), x.size(1)), self.pool)


class TextTransformerEncoder(nn.Module):
    """Embedding * sqrt(d) + positions -> pre-norm layers -> LayerNorm -> masked pool over the real
    tokens (``mean``, ``max`` or ``max_mean``)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        max_length: int = 512,
        pool: str = "mean",
    ) -> None:
        super().__init__()
        if pool not in TEXT_POOLS:
            raise ValueError(f"pool must be one of {list(TEXT_POOLS)}")
        self.pool = pool
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.positions = SinusoidalPositionalEncoding(d_model, max_length)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, heads, ff_dim or 4 * d_model, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.scale = math.sqrt(d_model)
        self.output_dim = d_model * (2 if pool == "max_mean" else 1)

    def hidden_states(self, x: Tensor) -> Tensor:
        """Per-token outputs (batch, seq, d_model) after the final LayerNorm."""
        mask = x != 0
        h = self.drop(self.positions(self.embedding(x) * self.scale))
        for layer in self.layers:
            h = layer(h, mask)
        return self.norm(h)

    def forward(self, x: Tensor) -> Tensor:
        return pool_over_time(self.hidden_states(x), x != 0, self.pool)


class ImageCNNEncoder(nn.Module):
    """Conv -> BatchNorm -> activation -> MaxPool blocks, then flatten."""

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        h, w, c_in = height, width, in_channels
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size, padding="same"),
                nn.BatchNorm2d(c_out),
                _activation(activation),
            ]
            if pool > 1 and h >= pool and w >= pool:
                blocks.append(nn.MaxPool2d(pool))
                h, w = h // pool, w // pool
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            c_in = c_out
        blocks.append(nn.Flatten())
        self.net = nn.Sequential(*blocks)
        self.input_shape = (in_channels, height, width)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            self.output_dim = int(self.net(torch.zeros(1, *self.input_shape)).shape[1])
        self.train(was_training)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class FlattenEncoder(nn.Module):
    """Flatten each sample; output_dim = prod(input_shape)."""

    def __init__(self, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_dim = math.prod(self.input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.size(0), -1)


def _split_audio(x: Tensor) -> tuple[Tensor, Tensor]:
    """Audio feature tensors (batch, 1, 1 + bins, frames) → spectrogram (batch, 1, bins, frames), mask (batch, frames)."""
    return x[:, :, 1:], x[:, 0, 0] > 0


class AudioCNNEncoder(nn.Module):
    """2-D CNN over the (bins, frames) spectrogram: the image CNN blocks, then flatten."""

    def __init__(self, bins: int, frames: int, **cnn: object) -> None:
        super().__init__()
        self.cnn = ImageCNNEncoder(1, bins, frames, **cnn)  # type: ignore[arg-type]
        self.output_dim = self.cnn.output_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.cnn(_split_audio(x)[0])


class AudioConv1dEncoder(nn.Module):
    """1-D convolutions over frames (bins as channels), then mean and max pooling over the clip's frames."""

    def __init__(self, bins: int, channels: Sequence[int] = (64, 128), kernel_size: int = 5,
                 activation: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = bins
        for c_out in channels:
            layers += [nn.Conv1d(c_in, c_out, kernel_size, padding="same"), nn.BatchNorm1d(c_out), _activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            c_in = c_out
        self.net = nn.Sequential(*layers)
        self.output_dim = 2 * c_in

    def forward(self, x: Tensor) -> Tensor:
        spec, mask = _split_audio(x)
        h = self.net(spec[:, 0]).transpose(1, 2)  # (batch, frames, channels)
        peak = h.masked_fill(~mask[..., None], float("-inf")).amax(1)
        return torch.cat([_masked_mean(h, mask), torch.nan_to_num(peak, neginf=0.0)], dim=-1)


class AudioTransformerEncoder(nn.Module):
    """Frames → linear projection + sinusoidal positions → pre-norm self-attention layers → masked mean."""

    def __init__(self, bins: int, frames: int, d_model: int = 64, heads: int = 4, layers: int = 2,
                 ff_dim: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(bins, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model, max(512, frames))
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(TransformerEncoderLayer(d_model, heads, ff_dim or 4 * d_model, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.output_dim = d_model

    def forward(self, x: Tensor) -> Tensor:
        spec, mask = _split_audio(x)
        h = self.drop(self.positions(self.project(spec[:, 0].transpose(1, 2))))
        for layer in self.layers:
            h = layer(h, mask)
        return _masked_mean(self.norm(h), mask)
