"""An export-friendly twin of kiln's recurrent text encoder. Neither ONNX exporter of torch 2.13
handles `pack_padded_sequence` (TorchScript: an internal error in the peephole pass; torch.export:
a FakeTensor size error), so the exported graph runs the same weights over the padded batch and
reads each row's state at its own last token. Padding comes after the tokens, so the forward
direction is unchanged; a backward direction runs as a forward LSTM/GRU over each row reversed
within its length. Results match the packed encoder to float rounding."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from kiln.models.encoders import TextRNNEncoder, pool_over_time


def _direction(rnn: nn.RNNBase, suffix: str) -> nn.RNNBase:
    """One direction of a single-layer (possibly bidirectional) LSTM/GRU as a forward module."""
    single = type(rnn)(rnn.input_size, rnn.hidden_size, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(single, name).copy_(getattr(rnn, name + suffix))
    return single


def _reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Each row's first `length` positions reversed; padding positions stay where they are."""
    t = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(t <= last, last - t, t)
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.size(2)))


def _at(x: Tensor, positions: Tensor) -> Tensor:
    return torch.gather(x, 1, positions.view(-1, 1, 1).expand(-1, 1, x.size(2))).squeeze(1)


class UnpackedRNNEncoder(nn.Module):
    def __init__(self, packed: TextRNNEncoder) -> None:
        super().__init__()
        self.embedding = packed.embedding
        self.embedding_dropout = packed.embedding_dropout
        self.dropout = packed.dropout
        self.pool = packed.pool
        self.bidirectional = packed.bidirectional
        self.output_dim = packed.output_dim
        self.forward_rnns = nn.ModuleList(_direction(r, "") for r in packed.rnns)
        self.backward_rnns = nn.ModuleList(_direction(r, "_reverse") for r in packed.rnns) if packed.bidirectional else None

    def forward(self, x: Tensor) -> Tensor:
        lengths = (x != 0).sum(1).clamp(min=1)
        real = torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        mask = real.unsqueeze(-1)
        out = self.embedding_dropout(self.embedding(x))
        final = out[:, 0]
        for i, rnn in enumerate(self.forward_rnns):
            if i:
                out = self.dropout(out)
            seq, _ = rnn(out)
            final = _at(seq, lengths - 1)
            if self.backward_rnns is not None:
                back, _ = self.backward_rnns[i](_reverse_within(out, lengths))
                final = torch.cat([final, _at(back, lengths - 1)], dim=-1)
                seq = torch.cat([seq, _reverse_within(back, lengths)], dim=-1)
            out = seq * mask  # pad_packed_sequence fills padding with zeros
        return final if self.pool == "last" else pool_over_time(out, real, self.pool)


def exportable(net: nn.Module) -> nn.Module:
    """A copy of `net` whose packed recurrent encoders are replaced by their unpacked twins."""
    net = copy.deepcopy(net)
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, TextRNNEncoder):
                setattr(module, child_name, UnpackedRNNEncoder(child))
    return net
