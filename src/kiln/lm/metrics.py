"""Generation metrics for language models: prompt → target pairs from a table; a continuation is
generated for each prompt and scored against its target with corpus BLEU (sacrebleu) and ROUGE-1/2/L
F-measures (rouge-score); the loss and perplexity of each target given its prompt are measured too.

sacrebleu and rouge-score are imported only when these metrics run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from kiln.errors import KilnError, did_you_mean
from kiln.training.sampled import perplexity

if TYPE_CHECKING:
    from kiln.models.gpt import GPT
    from kiln.lm.artifact import LanguageModel

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
log = logging.getLogger("kiln")


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of hypotheses against one reference each: sacrebleu's defaults (13a
    tokenization, exponential smoothing, case-sensitive)."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def rouge(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (0-1) over the pairs, from rouge-score (its
    default tokenizer: lowercase, words of ASCII letters and digits; no stemming)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        scores = scorer.score(reference, hypothesis)  # rouge-score's order: (target, prediction)
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    n = max(1, len(hypotheses))
    return {name: total / n for name, total in totals.items()}


def generation_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """{"bleu", "rouge1", "rouge2", "rougeL"} of generated texts against their references."""
    if len(hypotheses) != len(references):
        raise KilnError(f"{len(hypotheses)} generated texts but {len(references)} references")
    if not references:
        raise KilnError("no texts to score: give at least one generated text and its reference")
    return {"bleu": bleu(hypotheses, references), **rouge(hypotheses, references)}


def read_pairs(frame: pd.DataFrame, prompt_column: str, target_column: str) -> tuple[list[str], list[str]]:
    """The prompt and target texts of a table; a missing column or an empty cell is a KilnError."""
    if not len(frame):
        raise KilnError("evaluation data is empty: it needs at least one prompt/target row")
    columns = [str(c) for c in frame.columns]
    for option, name in (("--prompt-column", prompt_column), ("--target-column", target_column)):
        if name not in columns:
            shown = ", ".join(columns[:10]) + (", ..." if len(columns) > 10 else "")
            raise KilnError(f"evaluation data has no '{name}' column{did_you_mean(name, columns)} "
                            f"(columns: {shown or 'none'}); choose it with {option} (Python: {option[2:].replace('-', '_')}=)")

    def texts(name: str, what: str) -> list[str]:
        values = ["" if pd.isna(v) else str(v) for v in frame[name].tolist()]
        for row, value in enumerate(values, start=1):
            if not value:
                raise KilnError(f"evaluation data row {row}: the {what} ('{name}') is empty")
        return values

    return texts(prompt_column, "prompt"), texts(target_column, "target")


@torch.no_grad()
def target_nll(net: "GPT", prompt_ids: list[int], target_ids: list[int]) -> float:
    """Summed next-token cross-entropy (nats) of target_ids following prompt_ids. Targets are scored in
    windows of at most block_size / 2 tokens, each seeing up to block_size preceding tokens of context
    (the prompt first)."""
    ids = prompt_ids + target_ids
    block = net.block_size
    stride = max(1, block // 2)
    device = net.tok_emb.weight.device
    total = 0.0
    first = len(prompt_ids)  # position (in ids) of the first token to score
    while first < len(ids):
        end = min(len(ids), first + stride)  # score positions first .. end-1
        start = max(0, end - 1 - block)
        x = torch.tensor(ids[start : end - 1], device=device)
        y = torch.tensor(ids[start + 1 : end], device=device)
        y[: first - start - 1] = -1  # context only: not scored
        _, loss = net(x[None], y[None])
        total += float(loss) * (end - first)
        first = end
    return total


def evaluate_pairs(
    model: "LanguageModel",
    frame: pd.DataFrame,
    prompt_column: str = "prompt",
    target_column: str = "target",
    max_new_tokens: int | None = None,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Generate a continuation of every prompt (max_new_tokens: the target's length in tokens when
    None) and score it; returns (metrics, generated texts)."""
    prompts, targets = read_pairs(frame, prompt_column, target_column)
    model._check(1 if max_new_tokens is None else max_new_tokens, temperature, top_k, top_p)
    model.net.eval()
    hypotheses: list[str] = []
    nll, count, unknown = 0.0, 0, 0
    for row, (prompt, target) in enumerate(zip(prompts, targets), start=1):
        try:
            prompt_ids = model.encode_prompt(prompt)
        except KilnError as exc:
            raise KilnError(f"evaluation data row {row}: {exc}") from None
        target_ids = model.tokenizer.encode(target)
        if not target_ids:
            raise KilnError(f"evaluation data row {row}: the target {target!r} has no tokens for the {model.tokenizer.kind} tokenizer")
        unknown += target_ids.count(model.tokenizer.unk_id)
        n_new = max_new_tokens if max_new_tokens is not None else len(target_ids)
        # Each row's seed is derived from `seed`, so a row's text does not depend on the rows before it.
        row_seed = None if seed is None else seed + row - 1
        hypotheses.append(model.generate(prompt, n_new, temperature, top_k, top_p, row_seed))
        nll += target_nll(model.net, prompt_ids, target_ids)
        count += len(target_ids)
    if unknown:
        log.warning("the targets have %d token(s) outside the model's vocabulary; they count in the loss as <unk>", unknown)
    loss = nll / count
    metrics: dict[str, Any] = {
        **generation_metrics(hypotheses, targets),
        "loss": loss,
        "perplexity": perplexity(loss),
        "examples": len(targets),
        "target_tokens": count,
        "generation": {"max_new_tokens": max_new_tokens if max_new_tokens is not None else "target length",
                       "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed},
    }
    return metrics, hypotheses
