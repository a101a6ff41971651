"""Sampling from a GPT: temperature, top-k and top-p (nucleus) sampling with a seeded generator,
with or without the key/value cache."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import torch
from torch import Tensor

from kiln.models.gpt import GPT, KVCache


def sample_next(
    logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator, banned: tuple[int, ...] = (0, 1)
) -> int:
    """Pick the next token from logits (vocab,): greedy when temperature == 0, else sample from the
    softmax of logits / temperature restricted to the top_k tokens and the top_p probability mass.
    `banned` ids (padding 0 and unknown 1: never useful text) are never produced."""
    logits = logits.detach().float().cpu().clone()
    logits[list(banned)] = float("-inf")
    if temperature == 0 or top_k == 1:
        return int(torch.argmax(logits))
    logits = logits / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least the most likely token).
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p
        logits[order[drop]] = float("-inf")
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.inference_mode()
def generate_ids(
    model: GPT,
    prompt_ids: list[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> Iterator[int]:
    """Yield `max_new_tokens` new token ids, one at a time.

    Without the cache every step recomputes the last block_size tokens. With it, the prompt (cropped
    to block_size) is run once and each step runs only the new token; once the context reaches
    block_size the learned positions would shift, so generation falls back to recomputing the last
    block_size tokens per step (the same numbers as without the cache).
    """
    if not prompt_ids:
        raise ValueError("the prompt must contain at least one token")
    was_training = model.training
    model.eval()
    device = model.tok_emb.weight.device
    generator = torch.Generator().manual_seed(seed if seed is not None else secrets.randbits(63))
    context = list(prompt_ids)
    cache = KVCache.empty(model) if use_cache else None
    try:
        if cache is not None:
            window = context[-model.block_size :]
            logits = model.forward_step(torch.tensor([window], device=device), cache)[0, -1]
        for step in range(max_new_tokens):
            if cache is None:
                logits = model.last_logits(torch.tensor([context[-model.block_size :]], device=device))[0]
            token = sample_next(logits, temperature, top_k, top_p, generator)
            context.append(token)
            yield token
            if step == max_new_tokens - 1:
                break
            if cache is not None and not cache.full:
                logits = model.forward_step(torch.tensor([[token]], device=device), cache)[0, -1]
            elif cache is not None:
                logits = model.last_logits(torch.tensor([context[-model.block_size :]], device=device))[0]
    finally:
        model.train(was_training)
