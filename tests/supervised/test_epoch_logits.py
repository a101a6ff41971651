"""The epoch's training logits buffer behind the training metric (kiln.supervised.task.EpochLogits)."""

from __future__ import annotations

import torch

from kiln.supervised.task import EpochLogits


def test_keeps_every_batch_in_order() -> None:
    buffer = EpochLogits(10)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(10, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    for rows in order.split(4):
        buffer.add(rows, {"label": logits[rows] * 2})
    rows, seen = buffer.seen()
    assert torch.equal(rows, order)
    assert torch.equal(seen["label"], (logits[order] * 2).detach())
    assert not seen["label"].requires_grad


def test_a_partial_epoch_shows_only_the_rows_added() -> None:
    buffer = EpochLogits(8)
    buffer.add(torch.tensor([5, 2]), {"y": torch.tensor([[0.5], [-1.0]])})
    rows, seen = buffer.seen()
    assert rows.tolist() == [5, 2]
    assert seen["y"].squeeze(-1).tolist() == [0.5, -1.0]


def test_empty_before_the_first_batch() -> None:
    rows, seen = EpochLogits(4).seen()
    assert len(rows) == 0 and seen == {}
