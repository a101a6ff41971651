"""A trained language model: config + fitted tokenizer + GPT, saved as a pickle-free directory
(`weights.safetensors` + `model.json`), with text generation and perplexity evaluation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from kiln.artifact import (ARTIFACTS, FORMAT_VERSION, META, WEIGHTS, TrainedModel, from_dir_checked, load_weights, read_meta,
                           saved_state_errors)
from kiln.data.loading import READERS, read_table, read_text
from kiln.errors import KilnError
from kiln.features.tokenizers import Tokenizer, tokenizer_from_state
from kiln.io import save_tensors, write_json
from kiln.lm.config import LMConfig, load_lm_config
from kiln.lm.generate import generate_ids
from kiln.lm.metrics import evaluate_pairs
from kiln.models.budget import LOADING_COPIES, build_within_memory
from kiln.models.gpt import GPT
from kiln.training.sampled import perplexity

if TYPE_CHECKING:
    import pandas as pd

KIND = "language_model"
log = logging.getLogger("kiln")
MAX_TEMPERATURE = 100.0  # beyond this sampling is uniform noise (and 1e999 is inf: NaN probabilities)


def _is_path(data: Any) -> bool:
    """A Path, or a short one-line string naming an existing file (a longer string is text to score)."""
    if isinstance(data, Path):
        return True
    return isinstance(data, str) and len(data) < 4096 and "\n" not in data and Path(data).is_file()


@ARTIFACTS.register(KIND)
class LanguageModel(TrainedModel):
    """`generate` / `stream` text, `evaluate` perplexity on text or BLEU/ROUGE on prompt → target pairs,
    `save` / `load`.

    `generate` returns the continuation as one string (without the prompt); `stream` yields the
    same text piece by piece as tokens are produced (joined, the pieces equal `generate`'s string
    for the same arguments and seed).
    """

    kind = KIND

    def __init__(self, config: LMConfig, tokenizer: Tokenizer, net: GPT) -> None:
        super().__init__(config, net)
        self.tokenizer = tokenizer

    # -- generation ---------------------------------------------------------------------------
    @saved_state_errors
    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt. The char tokenizer refuses characters it never saw in training;
        other tokenizers map unknown tokens to <unk> (with a warning)."""
        if not isinstance(prompt, str) or not prompt:
            raise KilnError("the prompt is empty: give at least one character to continue from")
        ids = self.tokenizer.encode(prompt)
        unk = self.tokenizer.unk_id
        if unk in ids:
            if self.tokenizer.kind == "char":
                known = set(self.tokenizer.vocab[2:])
                prepared = prompt.lower() if self.tokenizer.lowercase else prompt
                missing = sorted({c for c in prepared if c not in known})
                shown = ", ".join(repr(c) for c in missing[:10]) + (", ..." if len(missing) > 10 else "")
                raise KilnError(f"the prompt has {len(missing)} character(s) the model never saw in training: {shown}; remove or replace them")
            log.warning("the prompt has %d token(s) outside the model's vocabulary; they are read as <unk>", ids.count(unk))
        if not ids:
            raise KilnError(f"the prompt {prompt!r} has no tokens for the {self.tokenizer.kind} tokenizer")
        return ids

    @staticmethod
    def _check(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None, seed: int | None = None) -> None:
        if int(max_new_tokens) < 1:
            raise KilnError(f"max_new_tokens must be at least 1 (got {max_new_tokens})")
        if not 0 <= temperature <= MAX_TEMPERATURE:
            raise KilnError(f"temperature must be between 0 and {MAX_TEMPERATURE:g} (got {temperature}); 0 picks the most likely token")
        if seed is not None and not 0 <= seed < 2**63:
            raise KilnError(f"seed must be between 0 and 2**63 - 1 (got {seed})")
        if top_k is not None and top_k < 1:
            raise KilnError(f"top_k must be at least 1 (got {top_k})")
        if top_p is not None and not 0 < top_p <= 1:
            raise KilnError(f"top_p must be in (0, 1] (got {top_p})")

    def generate_ids(
        self, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0, top_k: int | None = None,
        top_p: float | None = None, seed: int | None = None, use_cache: bool = True,
    ) -> Iterator[int]:
        self._check(max_new_tokens, temperature, top_k, top_p, seed)
        ids = self.encode_prompt(prompt)
        return generate_ids(self.net, ids, int(max_new_tokens), temperature, top_k, top_p, seed, use_cache)

    def stream(
        self, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0, top_k: int | None = None,
        top_p: float | None = None, seed: int | None = None, use_cache: bool = True,
    ) -> Iterator[str]:
        """Yield the continuation of `prompt` as text pieces, as the tokens are sampled."""
        self._check(max_new_tokens, temperature, top_k, top_p, seed)
        prompt_ids = self.encode_prompt(prompt)
        tokens = generate_ids(self.net, prompt_ids, int(max_new_tokens), temperature, top_k, top_p, seed, use_cache)
        if self.tokenizer.kind == "char":
            for token in tokens:
                yield self.tokenizer.decode([token])
            return
        # Subword / word tokenizers: decode with a little prompt context (spacing, merges) and emit
        # what the text grew by; hold back while the text ends in an incomplete character.
        tail = prompt_ids[-8:]
        base = self.tokenizer.decode(tail)
        new: list[int] = []
        emitted = ""
        for token in tokens:
            new.append(token)
            text = self.tokenizer.decode(tail + new)
            text = text[len(base) :] if text.startswith(base) else text
            if text.endswith("\ufffd") or not text.startswith(emitted):
                continue
            if len(text) > len(emitted):
                yield text[len(emitted) :]
                emitted = text

    def generate(
        self, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0, top_k: int | None = None,
        top_p: float | None = None, seed: int | None = None, use_cache: bool = True,
    ) -> str:
        """The continuation of `prompt` (without the prompt) as one string."""
        return "".join(self.stream(prompt, max_new_tokens, temperature, top_k, top_p, seed, use_cache))

    # -- evaluation ---------------------------------------------------------------------------
    @saved_state_errors
    def evaluate(
        self,
        data: "str | Path | pd.DataFrame | list[dict[str, Any]] | dict[str, list[Any]]",
        prompt_column: str | None = None,
        target_column: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Score the model on `data`:

        - a text, or a plain text file path: mean next-token loss and perplexity
          (`{"loss", "perplexity", "tokens"}`);
        - a table of prompt → target pairs (a .csv/.tsv/.jsonl/.parquet path, a DataFrame, a list of
          row dicts or a dict of columns; columns `prompt_column`, default "prompt", and
          `target_column`, default "target"): a continuation is generated for each prompt (greedy
          unless `temperature` > 0; `max_new_tokens` defaults to each target's length in tokens) and
          scored against the target with corpus BLEU (0-100, sacrebleu) and mean ROUGE-1/2/L
          F-measures (0-1, rouge-score); `loss` / `perplexity` are those of the targets' tokens given
          their prompts (see kiln.lm.metrics).
        """
        frame = self._pairs_table(data)
        options = {"prompt_column": prompt_column, "target_column": target_column, "max_new_tokens": max_new_tokens,
                   "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        if frame is None:
            given = [name for name, value in options.items() if value is not None]
            if given:
                raise KilnError(f"{', '.join(given)} apply to prompt/target tables only (.csv, .tsv, .jsonl, .parquet); "
                                "a plain text file is scored by loss and perplexity")
            return self._text_loss(data)  # type: ignore[arg-type]
        metrics, _ = evaluate_pairs(self, frame, prompt_column or "prompt", target_column or "target",
                                    max_new_tokens, temperature or 0.0, top_k, top_p, seed)
        return metrics

    @staticmethod
    def _pairs_table(data: Any) -> "pd.DataFrame | None":
        """`data` as a prompt/target table, or None when it is a text or a plain text file."""
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, (list, dict)):
            return pd.DataFrame(data)
        if isinstance(data, (str, Path)):
            name = str(data)
            if len(name) < 4096 and "\n" not in name and Path(name).suffix.lower() in READERS:
                return read_table(name)  # a missing or empty file is a one-line KilnError
        return None

    @torch.no_grad()
    def _text_loss(self, text: str | Path) -> dict[str, float]:
        """Mean next-token loss and perplexity over a text (or a text file path), in consecutive
        non-overlapping windows of block_size tokens."""
        if isinstance(text, Path) or _is_path(text):
            text = read_text(text, self.config.data.encoding, "evaluation text")
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        if len(ids) < 2:
            raise KilnError("the evaluation text needs at least 2 tokens")
        self.net.eval()
        t = self.net.block_size
        total, count = 0.0, 0
        for start in range(0, len(ids) - 1, t):
            chunk = ids[start : start + t + 1].to(self.device)
            if len(chunk) < 2:
                break
            _, loss = self.net(chunk[None, :-1], chunk[None, 1:])
            n = len(chunk) - 1
            total, count = total + float(loss) * n, count + n
        loss = total / count
        return {"loss": loss, "perplexity": perplexity(loss), "tokens": count}

    def predict(self, *_: Any, **__: Any) -> Any:
        raise KilnError("this is a language model: use `kiln generate` (or .generate) to produce text")

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_tensors(path / WEIGHTS, {k: v.cpu() for k, v in self.net.state_dict().items()})
        write_json(path / META, {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "config": self.config.model_dump(mode="json"),
            "tokenizer": self.tokenizer.state(),
            "vocab_size": self.tokenizer.vocab_size,
            "parameters": self.net.num_parameters(),
        })
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LanguageModel":
        folder, meta = read_meta(path)
        if meta.get("kind") != KIND:
            raise KilnError(f"{folder} is not a language model: it was not trained from a `task: language_modeling` config")
        return from_dir_checked(cls, folder, meta)

    @classmethod
    def from_dir(cls, path: Path, meta: dict[str, Any]) -> "LanguageModel":
        config = load_lm_config(meta["config"])
        try:
            tokenizer = tokenizer_from_state(meta["tokenizer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise KilnError(f"{path / META}: the tokenizer state is invalid ({type(exc).__name__}: {exc})") from None
        net = build_within_memory(lambda: GPT(config.model, tokenizer.vocab_size), f"the GPT model in {path}", LOADING_COPIES)
        net.load_state_dict(load_weights(path, net))
        net.eval()
        return cls(config, tokenizer, net)
