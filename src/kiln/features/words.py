"""Texts as whitespace-separated words, each distinct word handled once.

A token pattern that never matches whitespace (the word tokenizer's, the n-gram bag's) finds in a text exactly
the tokens it finds in the text's words one by one (Python's `\\s` and `str.split` agree on every code point), so
tokens are found once per distinct word and spread to every occurrence with numpy. `split_words` keeps the words
of the last three texts it split: features reading one column (a word-id feature beside an n-gram bag) split it
once, and the training split's stay kept while the validation split is encoded."""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

Tokens = tuple[np.ndarray, np.ndarray, list[str]]  # codes, rows, distinct tokens (Words.tokens)
KEPT = 3  # texts whose words split_words keeps (the training split's stay while a validation split, and the first
# half of the training split that the n-gram bag hashes beside a child process, are split)


@dataclass
class Words:
    """The words of some texts: each occurrence's code into `vocabulary` (the distinct words in order of first
    appearance) and its text's row (ascending)."""

    codes: np.ndarray
    rows: np.ndarray
    vocabulary: list[str]
    texts: int
    found: dict[re.Pattern[str], Tokens] = field(default_factory=dict)  # tokens by pattern, found once

    def tokens(self, token: re.Pattern[str]) -> Tokens:
        """Every token of the texts in order, as codes into the distinct tokens (in order of first appearance),
        the row of each, and the distinct tokens. `token` must never match whitespace."""
        if token not in self.found:
            self.found[token] = self._tokens(token)
        return self.found[token]

    def _tokens(self, token: re.Pattern[str]) -> Tokens:
        with gc_paused():
            per_word = list(map(token.findall, self.vocabulary))
            flat, _ = flatten(per_word)
            codes, distinct = factorize(flat)
        lengths = np.fromiter(map(len, per_word), dtype=np.int64, count=len(per_word))
        picks = expand((np.cumsum(lengths) - lengths)[self.codes], lengths[self.codes])
        return codes[picks], np.repeat(self.rows, lengths[self.codes]), distinct


_kept: list[tuple[list[str], Words]] = []  # the texts split lately (the latest first), and their words
_lock = threading.Lock()  # a server may encode requests in several threads


def split_words(texts: list[str]) -> Words:
    """The whitespace-separated words of the texts (texts equal to ones split lately: the words found then,
    not to be changed)."""
    with _lock:
        kept = [words for seen, words in _kept if seen == texts]
    if kept:
        return kept[0]
    with gc_paused():
        flat, rows = flatten(list(map(str.split, texts)))
        codes, vocabulary = factorize(flat)
    words = Words(codes, rows, vocabulary, len(texts))
    with _lock:
        _kept[:] = [(list(texts), words), *_kept[: KEPT - 1]]  # a copy: the caller may change its list
    return words


def clear_kept() -> None:
    """Forget the texts split lately (benchmarks time the splitting afresh; tests start clean)."""
    with _lock:
        _kept.clear()


def flatten(parts: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """The strings of all parts in order, and the part each came from."""
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    return list(chain.from_iterable(parts)), np.repeat(np.arange(len(parts)), lengths)


def factorize(strings: list[str]) -> tuple[np.ndarray, list[str]]:
    """Each string's code (int64) into the distinct strings, those in order of first appearance."""
    index = {string: code for code, string in enumerate(dict.fromkeys(strings))}
    return np.fromiter(map(index.__getitem__, strings), dtype=np.int64, count=len(strings)), list(index)


def expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions starts[i] .. starts[i] + lengths[i] - 1 of every i, concatenated."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if len(ends) else 0) + np.repeat(starts - ends + lengths, lengths)


def positions(rows: np.ndarray, texts: int) -> np.ndarray:
    """Each item's position within its row (`rows` ascending, `texts` rows in all)."""
    starts = np.zeros(texts + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=texts), out=starts[1:])
    return np.arange(len(rows)) - starts[rows]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while millions of short-lived strings and lists are made (none of them cyclic):
    Python's collector would otherwise walk every live object (torch's, pandas') again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
