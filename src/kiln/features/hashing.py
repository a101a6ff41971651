"""Hashed n-gram counts: the buckets and counts scikit-learn's `HashingVectorizer(alternate_sign=False,
norm=None, dtype=float32)` gives, without importing scikit-learn (its `sklearn.utils` costs ~1 s of start-up;
tests/features/test_hashing.py checks equality against it). The same tokens and n-grams, then MurmurHash3
(x86, 32-bit, seed 0, signed; the `mmh3` package) of each n-gram's UTF-8 bytes, bucket = |hash| mod
`n_features`. Imported when text is hashed (scipy.sparse loads then)."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain

import mmh3
import numpy as np
import pandas as pd
import scipy.sparse as sp


def word_ngram_buckets(tokens: list[str], rows: np.ndarray, sizes: list[int], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The buckets of the word n-grams of the given sizes within each row (tokens in row order, `rows` the row
    of each; an n-gram is its tokens joined by one space), and their rows."""
    ids, where = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for n in sizes:
        if n > len(tokens):
            continue
        grams = tokens if n == 1 else map(" ".join, zip(*(tokens[i:] for i in range(n))))
        starts = rows[: len(rows) - n + 1]
        inside = starts == rows[n - 1 :]  # the n tokens belong to one row
        ids.append(buckets(grams, n_features)[inside])
        where.append(starts[inside])
    return np.concatenate(ids), np.concatenate(where)


def char_wb_buckets(words: list[str], runs: list[tuple[int, int]], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The buckets of the character n-grams of each word padded with a space on each side (scikit-learn's
    char_wb), and the index of the word each came from. Per run of sizes low..high, a padded word of length L
    gives its n-grams of sizes low..min(high, L), or itself once when L < low."""
    padded = [f" {word} " for word in words]
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    index = np.arange(len(padded))
    ids, where = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for low, high in runs:
        for n in range(low, high + 1):
            ids.append(buckets([p[i : i + n] for p in padded for i in range(len(p) - n + 1)], n_features))
            where.append(np.repeat(index, np.maximum(lengths - n + 1, 0)))
        short = np.flatnonzero(lengths < low)
        ids.append(buckets([padded[i] for i in short], n_features))
        where.append(short)
    return np.concatenate(ids), np.concatenate(where)


def buckets(grams: Iterable[str], n_features: int) -> np.ndarray:
    """|MurmurHash3(UTF-8 bytes, seed 0, signed)| mod n_features of each n-gram (int64)."""
    hashes = np.fromiter(map(mmh3.hash, grams), dtype=np.int64)
    return np.abs(hashes) % n_features


def _flatten(parts: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """The strings of all parts in order, and the part each came from."""
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    return list(chain.from_iterable(parts)), np.repeat(np.arange(len(parts)), lengths)


def _matrix(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Counts of the (row, column) pairs: float32, indices sorted, no duplicates."""
    counts = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=shape)
    counts.sum_duplicates()
    return counts


def hashed_counts(texts: list[str], token: re.Pattern[str], word: list[tuple[int, int]], char: list[tuple[int, int]],
                  n_features: int, lowercase: bool) -> sp.csr_matrix:
    """(texts, n_features) float32 counts of the hashed word n-grams (`token` finds the words; one (low, high)
    run of sizes each) plus the char_wb n-grams of the whitespace-separated words (hashed once per distinct
    word, then summed through a texts × words count matrix)."""
    with _gc_paused():
        docs = [text.lower() for text in texts] if lowercase else texts
        total = sp.csr_matrix((len(texts), n_features), dtype=np.float32)
        if word:
            tokens, rows = _flatten(list(map(token.findall, docs)))
            ids, rows = word_ngram_buckets(tokens, rows, [n for low, high in word for n in range(low, high + 1)], n_features)
            total = _matrix(rows, ids, (len(texts), n_features))
        if char:
            words, rows = _flatten(list(map(str.split, docs)))
            codes, vocabulary = pd.factorize(np.asarray(words, dtype=object))
            by_word = _matrix(rows, codes, (len(texts), len(vocabulary)))
            # each distinct word as char_wb sees it: lowercased, split on whitespace
            pieces, owner = _flatten([(entry.lower() if lowercase else entry).split() for entry in vocabulary])
            ids, rows = char_wb_buckets(pieces, char, n_features)
            per_word = _matrix(owner[rows], ids, (len(vocabulary), n_features))
            # [words | word n-grams] @ [per word; identity]: the char and word counts summed in one product
            identity = sp.identity(n_features, np.float32, "csr")
            total = sp.hstack([by_word, total], format="csr") @ sp.vstack([per_word, identity], format="csr")
            total.sort_indices()
        return total


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage collection while millions of short-lived strings and lists are made (none of them cyclic):
    Python's collector would otherwise walk every live object (torch's, pandas') again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
