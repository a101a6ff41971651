"""Unlabelled examples for pre-training: lines of text files and a text column of tables, shuffled,
split, tokenized and padded to (examples, max_length) id tensors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kiln.errors import KilnError
from kiln.features.tokenizers import Tokenizer, tokenizer_from_state
from kiln.data.loading import read_table, read_text

log = logging.getLogger("kiln")


def read_examples(path: str, column: str, limit: int | None = None) -> list[str]:
    """Non-empty lines of a .txt file, or the non-empty `column` values of a table file."""
    if Path(path).suffix.lower() == ".txt":
        examples = [line.strip() for line in read_text(path, field="data.train").splitlines()]
    else:
        frame = read_table(path)
        if column not in frame.columns:
            raise KilnError(f"data.text_column: column '{column}' is not in {path}; it has: {', '.join(map(str, frame.columns))}")
        examples = [str(v).strip() for v in frame[column].dropna()]
    kept = [e for e in examples if e]
    if len(kept) < len(examples):
        log.info("%s: %d empty examples skipped", path, len(examples) - len(kept))
    if not kept:
        raise KilnError(f"data.train: {path} has no non-empty text")
    return kept[:limit] if limit else kept


def split_examples(examples: list[str], validation: float, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle with `seed`, hold out the `validation` fraction (at least one example each side)."""
    order = np.random.default_rng(seed).permutation(len(examples))
    held = min(len(examples) - 1, max(1, int(round(len(examples) * validation))))
    return [examples[i] for i in order[held:]], [examples[i] for i in order[:held]]


def pad_ids(tokenizer: Tokenizer, texts: list[str], max_length: int) -> Tensor:
    """Post-padded (len(texts), max_length) token ids; rows with no tokens are dropped."""
    rows = [ids[:max_length] for ids in tokenizer.encode_batch(texts)]
    rows = [r for r in rows if r]
    out = np.zeros((len(rows), max_length), dtype="int64")
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)


@dataclass
class PretrainData:
    tokenizer: Tokenizer
    train: Tensor  # (examples, max_length) ids, 0 = padding
    validation: Tensor
    sources: dict[str, int]  # examples read per source


def prepare_data(config: Any, tokenizer_state: dict[str, Any] | None = None) -> PretrainData:
    """Read every source, split, fit the tokenizer on the training part (unless a state is given)."""
    d = config.data
    sources = {path: read_examples(path, d.text_column, d.max_examples) for path in d.train}
    train, validation = split_examples([e for ex in sources.values() for e in ex], d.validation, d.seed)
    if tokenizer_state is not None:
        tokenizer = tokenizer_from_state(tokenizer_state)
    else:
        tokenizer = config.tokenizer.build().fit(train)
    length = config.tokenizer.max_length
    return PretrainData(tokenizer, pad_ids(tokenizer, train, length), pad_ids(tokenizer, validation, length),
                        {p: len(e) for p, e in sources.items()})
