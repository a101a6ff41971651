"""Tokenizers shared by text features and language models: fit on training text, encode to ids,
decode back, and persist as JSON. Id 0 is padding, id 1 is unknown."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from itertools import repeat
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from kiln.config import Section
from kiln.errors import KilnError, did_you_mean
from kiln.features.words import positions, split_words
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
        return self.fit_counts(self.count(texts))

    def count(self, texts: Iterable[str]) -> Counter[str]:
        """Token counts of some texts; counts of successive chunks add up (streaming fit)."""
        return Counter(tok for text in texts for tok in self.split(self._prepare(text)))

    def fit_counts(self, counts: Counter[str]) -> "Tokenizer":
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

    def encode_padded(self, texts: list[str], length: int) -> np.ndarray:
        """(texts, length) int64 ids: each text's first `length` tokens, then padding."""
        ids = np.full((len(texts), length), self.pad_id, dtype=np.int64)
        for row, row_ids in enumerate(self.encode_batch(texts)):
            row_ids = row_ids[:length]
            ids[row, : len(row_ids)] = row_ids
        return ids

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
    pattern: ClassVar[re.Pattern[str]] = _WORD  # never matches whitespace: see _tokens

    def split(self, text: str) -> list[str]:
        return self.pattern.findall(text)

    # A token never holds whitespace, so the texts' tokens are found once per distinct word (kiln.features.words).
    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[str], int]:
        """The tokens of the texts in order (codes into the distinct tokens), the row of each, the distinct
        tokens in order of first appearance, and the number of texts."""
        words = split_words(list(map(self._prepare, texts)))
        return (*words.tokens(self.pattern), words.texts)

    def count(self, texts: Iterable[str]) -> Counter[str]:
        codes, _, distinct, _ = self._tokens(list(texts))
        return Counter(dict(zip(distinct, np.bincount(codes, minlength=len(distinct)).tolist())))

    def encode_padded(self, texts: list[str], length: int) -> np.ndarray:
        codes, rows, distinct, count = self._tokens(texts)
        where = positions(rows, count)
        keep = where < length
        ids = np.fromiter(map(self._index.get, distinct, repeat(self.unk_id)), dtype=np.int64, count=len(distinct))
        padded = np.full((count, length), self.pad_id, dtype=np.int64)
        padded[rows[keep], where[keep]] = ids[codes[keep]]
        return padded


@TOKENIZERS.register("char")
class CharTokenizer(Tokenizer):
    """Single characters (case kept unless lowercase is set)."""

    kind = "char"

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, tokens: list[str]) -> str:
        return "".join(tokens)


def _hf() -> Any:
    """The Hugging Face `tokenizers` library, imported only when a subword tokenizer is used."""
    try:
        import tokenizers
    except ImportError:
        raise KilnError(
            "the bpe and wordpiece tokenizers need the Hugging Face tokenizers library: pip install tokenizers"
        ) from None
    return tokenizers


class SubwordTokenizer(Tokenizer):
    """A Hugging Face `tokenizers` pipeline trained on the training texts. Its JSON (`to_str`) is the
    state, so it persists inside model.json. Subclasses build the untrained pipeline and trainer.

    Training is made deterministic here: `tokenizers` assigns ids to `##` continuation pieces in
    hash-map order and breaks merge ties by id (huggingface/tokenizers#1794), and `limit_alphabet`
    breaks frequency ties the same way. So the alphabet is chosen here (most frequent characters
    first, ties by character) and continuation pieces are passed in a fixed order up front."""

    prefix: ClassVar[str | None] = None  # continuation prefix of non-initial pieces ("##")

    def __init__(self, vocab_size: int = 10000, lowercase: bool = True, min_frequency: int = 1) -> None:
        super().__init__(vocab_size, lowercase, min_frequency)
        self._lib = _hf()  # fail early, with the install hint
        self._tok: Any = None

    def _pipeline(self) -> Any:
        raise TypeError(f"{type(self).__name__} must implement _pipeline")  # pragma: no cover

    def _trainer(self, **options: Any) -> Any:
        raise TypeError(f"{type(self).__name__} must implement _trainer")  # pragma: no cover

    @property
    def backend(self) -> Any:
        if self._tok is None:
            raise KilnError(f"the {self.kind} tokenizer is used before it was fitted")
        return self._tok

    def _words(self, tok: Any, texts: Iterable[str]) -> Counter[str]:
        """Pre-tokenized words with counts, exactly as the trainer sees them."""
        words: Counter[str] = Counter()
        for text in texts:
            norm = tok.normalizer.normalize_str(text) if tok.normalizer is not None else text
            words.update(word for word, _ in tok.pre_tokenizer.pre_tokenize_str(norm))
        return words

    def _alphabet(self, words: Counter[str]) -> tuple[list[str], list[str]]:
        """The characters kept (most frequent first, within the vocabulary budget) and the
        continuation pieces they need."""
        chars: Counter[str] = Counter()
        later: set[str] = set()  # characters seen after the first position of a word
        for word, count in words.items():
            for i, ch in enumerate(word):
                chars[ch] += count
                if i:
                    later.add(ch)
        budget, alphabet, pieces = self.max_vocab - 2, [], []
        for ch in sorted(chars, key=lambda c: (-chars[c], c)):
            extra = [self.prefix + ch] if self.prefix is not None and ch in later else []
            if len(alphabet) + len(pieces) + 1 + len(extra) > budget:
                break
            alphabet.append(ch)
            pieces.extend(extra)
        return sorted(alphabet), sorted(pieces)

    def fit(self, texts: Iterable[str]) -> "Tokenizer":
        texts = list(texts)
        tok = self._pipeline()
        alphabet, pieces = self._alphabet(self._words(tok, texts))
        trainer = self._trainer(
            vocab_size=self.max_vocab,
            min_frequency=self.min_frequency,
            special_tokens=[PAD, UNK, *pieces],
            initial_alphabet=alphabet,
            limit_alphabet=len(alphabet),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        # <pad>/<unk> (ids 0/1) and the seeded pieces stay in the vocabulary, but not as added tokens:
        # a literal "<pad>" in the text is then ordinary text, as for the word and char tokenizers
        spec = json.loads(tok.to_str())
        spec["added_tokens"] = []
        self._load(json.dumps(spec, ensure_ascii=False))
        return self

    def _load(self, spec: str) -> None:
        self._tok = self._lib.Tokenizer.from_str(spec)
        index = self._tok.get_vocab(with_added_tokens=False)
        vocab = sorted(index, key=index.__getitem__)
        if vocab[:2] != [PAD, UNK] or [index[t] for t in vocab] != list(range(len(vocab))):
            raise KilnError(f"{self.kind} tokenizer state is invalid: ids must run 0..n-1 with {PAD}=0, {UNK}=1")
        self._set_vocab(vocab)

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text).ids)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [list(e.ids) for e in self.backend.encode_batch(list(texts))]

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode([int(i) for i in ids if int(i) != self.pad_id], skip_special_tokens=False)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "lowercase": self.lowercase, "json": self.backend.to_str()}

    def load_state(self, state: dict[str, Any]) -> "Tokenizer":
        self.lowercase = state["lowercase"]
        self._load(state["json"])
        return self


@TOKENIZERS.register("bpe")
class BPETokenizer(SubwordTokenizer):
    """Byte-pair encoding over characters, SentencePiece style: spaces become "▁" (kept in the
    pieces, so decoding restores them) and punctuation is split off before merging. Characters
    not in the trained alphabet become <unk>."""

    kind = "bpe"

    def _pipeline(self) -> Any:
        hf = self._lib
        tok = hf.Tokenizer(hf.models.BPE(unk_token=UNK))
        if self.lowercase:
            tok.normalizer = hf.normalizers.Lowercase()
        tok.pre_tokenizer = hf.pre_tokenizers.Sequence(
            [hf.pre_tokenizers.Metaspace(), hf.pre_tokenizers.Punctuation()]
        )
        tok.decoder = hf.decoders.Metaspace()
        return tok

    def _trainer(self, **options: Any) -> Any:
        return self._lib.trainers.BpeTrainer(**options)


@TOKENIZERS.register("wordpiece")
class WordPieceTokenizer(SubwordTokenizer):
    """BERT-style WordPiece: words and punctuation split apart, non-initial pieces marked "##",
    a word with a character outside the trained alphabet becomes <unk>. Decoding rejoins the
    pieces and tidies spaces before punctuation (BERT's cleanup)."""

    kind = "wordpiece"
    prefix = "##"

    def _pipeline(self) -> Any:
        hf = self._lib
        tok = hf.Tokenizer(hf.models.WordPiece(unk_token=UNK, continuing_subword_prefix=self.prefix))
        tok.normalizer = hf.normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=self.lowercase
        )
        tok.pre_tokenizer = hf.pre_tokenizers.BertPreTokenizer()
        tok.decoder = hf.decoders.WordPiece(prefix=self.prefix)
        return tok

    def _trainer(self, **options: Any) -> Any:
        return self._lib.trainers.WordPieceTrainer(continuing_subword_prefix=self.prefix, **options)


def build_tokenizer(kind: str, **options: Any) -> Tokenizer:
    return TOKENIZERS.get(kind)(**options)


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    return TOKENIZERS.get(state["kind"])().load_state(state)



class TokenizerConfig(Section):
    """A tokenizer trained on a corpus (language modelling, pre-training)."""

    type: str = "char"  # char | word | bpe | wordpiece
    vocab_size: int | None = Field(None, ge=3, le=1_000_000)  # None: the tokenizer's default (char/word keep every token up to 10000)
    lowercase: bool = False  # language models keep case by default

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        options = [n for n in TOKENIZERS.names() if n != "pretrained"]
        if value not in options:
            raise ValueError(f"'{value}' is not allowed{did_you_mean(value, options)}; valid: {', '.join(options)}")
        return value

    def build(self) -> Tokenizer:
        """A fresh tokenizer (options left unset keep the tokenizer's defaults)."""
        options: dict[str, Any] = {"lowercase": self.lowercase}
        if self.vocab_size is not None:
            options["vocab_size"] = self.vocab_size
        return build_tokenizer(self.type, **options)
