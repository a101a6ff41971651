"""Text → token ids for language modelling: read a plain text file, hold out its last fraction for
validation, fit the tokenizer on the training part only, and sample (input, target) blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kiln.errors import KilnError
from kiln.data.loading import read_text
from kiln.features.tokenizers import Tokenizer, tokenizer_from_state


def split_text(text: str, validation: float) -> tuple[str, str]:
    """The first (1 - validation) of the characters train, the rest validate (no shuffling)."""
    cut = int(round(len(text) * (1.0 - validation)))
    return text[:cut], text[cut:]


def encode(tokenizer: Tokenizer, text: str) -> Tensor:
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


@dataclass
class LMData:
    tokenizer: Tokenizer
    train: Tensor  # 1-D token ids
    validation: Tensor


def prepare_data(config: Any, tokenizer_state: dict[str, Any] | None = None) -> LMData:
    """Read, split and tokenize the config's text. A saved tokenizer state (resume) is reused, not refit."""
    data = config.data
    if not data.train:
        raise KilnError("no training text: set data.train in the config (a plain text file) or pass --data")
    text = read_text(data.train, data.encoding, "data.train")
    if data.validation:
        train_text, val_text = text, read_text(data.validation, data.encoding, "data.validation")
    else:
        train_text, val_text = split_text(text, data.split.validation)
    if tokenizer_state is not None:
        tokenizer = tokenizer_from_state(tokenizer_state)
    else:
        tokenizer = config.tokenizer.build().fit([train_text])
    result = LMData(tokenizer, encode(tokenizer, train_text), encode(tokenizer, val_text))
    need = config.model.block_size + 1
    for name, ids in (("training", result.train), ("validation", result.validation)):
        if len(ids) <= need:
            hint = "raise data.split.validation or " if name == "validation" and not data.validation else ""
            raise KilnError(f"the {name} text has {len(ids)} tokens; it needs more than model.block_size + 1 = {need}: {hint}lower model.block_size")
    return result


def sample_starts(n_tokens: int, block_size: int, count: int, generator: torch.Generator) -> Tensor:
    """`count` random block start offsets, each leaving room for block_size inputs plus one target."""
    return torch.randint(0, n_tokens - block_size, (count,), generator=generator)


def blocks(ids: Tensor, starts: Tensor, block_size: int) -> tuple[Tensor, Tensor]:
    """Inputs ids[s : s+T] and next-token targets ids[s+1 : s+T+1] for each start s."""
    rows = ids.unfold(0, block_size + 1, 1)[starts]
    return rows[:, :-1], rows[:, 1:]


def fixed_starts(n_tokens: int, block_size: int, batches: int, batch_size: int, seed: int) -> Tensor:
    """(batches, batch_size) block starts used for every loss estimate of one split."""
    generator = torch.Generator().manual_seed(seed * 7_919 + 17)
    return sample_starts(n_tokens, block_size, batches * batch_size, generator).view(batches, batch_size)


class BlockSampler:
    """Next-token prediction: random contiguous blocks of a 1-D token stream."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.tokens_per_example = float(block_size)

    def sample(self, data: Tensor, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        starts = sample_starts(len(data), self.block_size, count, generator)
        return blocks(data, starts.to(data.device), self.block_size)

    def fixed(self, data: Tensor, batches: int, batch_size: int, seed: int) -> list[tuple[Tensor, Tensor]]:
        starts = fixed_starts(len(data), self.block_size, batches, batch_size, seed).to(data.device)
        return [blocks(data, row, self.block_size) for row in starts]
