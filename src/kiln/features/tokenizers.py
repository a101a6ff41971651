"""Tokenizers shared by text features and language models: fit on training text, encode to ids,
decode back, and persist as JSON. Id 0 is padding, id 1 is unknown."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar

from kiln.registry import Registry

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[\w']+|[^\w\s]")


class Tokenizer:
    """Base class. Subclasses set `kind` and implement `split`/`join` (vocabulary tokenizers)
    or override `fit`/`encode`/`decode`/`state` entirely (e.g. subword tokenizers)."""

    kind: ClassVar[str]
    pad_id: ClassVar[int] = 0
    unk_id: ClassVar[int] = 1

    def __init__(self, vocab_size: int = 10000, lowercase: bool = True, min_frequency: int = 1) -> None:
        self.max_vocab = vocab_size
        self.lowercase = lowercase
        self.min_frequency = min_frequency
        self.vocab: list[str] = [PAD, UNK]
        self._index: dict[str, int] = {PAD: 0, UNK: 1}

    # -- vocabulary tokenizers ----------------------------------------------------------------
    def split(self, text: str) -> list[str]:
        raise TypeError(f"{type(self).__name__} must implement split")  # pragma: no cover

    def join(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def _prepare(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def fit(self, texts: Iterable[str]) -> "Tokenizer":
        counts = Counter(tok for text in texts for tok in self.split(self._prepare(text)))
        common = counts.most_common(max(0, self.max_vocab - 2))
        self._set_vocab([PAD, UNK, *(t for t, n in common if n >= self.min_frequency)])
        return self

    def _set_vocab(self, vocab: list[str]) -> None:
        self.vocab = list(vocab)
        self._index = {t: i for i, t in enumerate(self.vocab)}

    def encode(self, text: str) -> list[int]:
        return [self._index.get(t, self.unk_id) for t in self.split(self._prepare(text))]

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return self.join([self.vocab[i] for i in ids if i != self.pad_id])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "lowercase": self.lowercase, "vocab": self.vocab}

    def load_state(self, state: dict[str, Any]) -> "Tokenizer":
        self.lowercase = state["lowercase"]
        self._set_vocab(state["vocab"])
        return self


TOKENIZERS: Registry[type[Tokenizer]] = Registry("tokenizer")


@TOKENIZERS.register("word")
class WordTokenizer(Tokenizer):
    """Words and punctuation marks."""

    kind = "word"

    def split(self, text: str) -> list[str]:
        return _WORD.findall(text)


@TOKENIZERS.register("char")
class CharTokenizer(Tokenizer):
    """Single characters (case kept unless lowercase is set)."""

    kind = "char"

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, tokens: list[str]) -> str:
        return "".join(tokens)


def build_tokenizer(kind: str, **options: Any) -> Tokenizer:
    return TOKENIZERS.get(kind)(**options)


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    return TOKENIZERS.get(state["kind"])().load_state(state)
