"""Hashed n-gram counts: the buckets and counts scikit-learn's `HashingVectorizer(alternate_sign=False,
norm=None, dtype=float32)` gives, without importing scikit-learn (its `sklearn.utils` costs ~1 s of start-up;
tests/features/test_hashing.py checks equality against it). The same tokens and n-grams, then MurmurHash3
(x86, 32-bit, seed 0, signed; the `mmh3` package) of each distinct n-gram's UTF-8 bytes, bucket = |hash| mod
`n_features`. Imported when text is hashed (scipy.sparse loads then)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import mmh3
import numpy as np
import pandas as pd
import scipy.sparse as sp


def word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    """The word n-grams of sizes low..high: each is its tokens joined by one space."""
    grams: list[str] = []
    for n in range(low, min(high, len(tokens)) + 1):
        grams += tokens if n == 1 else map(" ".join, zip(*(tokens[i:] for i in range(n))))
    return grams


def char_wb_ngrams(word: str, low: int, high: int) -> list[str]:
    """The character n-grams of sizes low..high of one word padded with a space on each side; a padded
    word shorter than the next size counts once, whole, and ends the sizes."""
    padded = f" {word} "
    grams: list[str] = []
    for n in range(low, high + 1):
        if n >= len(padded):
            grams.append(padded)
            break
        grams += [padded[i : i + n] for i in range(len(padded) - n + 1)]
    return grams


def buckets(grams: Iterable[str], n_features: int) -> np.ndarray:
    """|MurmurHash3(UTF-8 bytes, seed 0, signed)| mod n_features of each n-gram (int64)."""
    hashes = np.fromiter(map(mmh3.hash, grams), dtype=np.int64)
    return np.abs(hashes) % n_features


def _factorized(flat: list[str], ends: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, code) of each string of `flat` (row i holds flat[ends[i-1]:ends[i]]) and the distinct strings."""
    codes, distinct = pd.factorize(np.asarray(flat, dtype=object))
    rows = np.repeat(np.arange(len(ends)), np.diff(np.asarray(ends, dtype=np.int64), prepend=0))
    return rows, codes, np.asarray(distinct, dtype=object)


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
    docs = [text.lower() for text in texts] if lowercase else texts
    total = sp.csr_matrix((len(texts), n_features), dtype=np.float32)
    if word:
        flat: list[str] = []
        ends: list[int] = []
        for doc in docs:
            tokens = token.findall(doc)
            for low, high in word:
                flat += word_ngrams(tokens, low, high)
            ends.append(len(flat))
        rows, codes, distinct = _factorized(flat, ends)
        total = _matrix(rows, buckets(distinct, n_features)[codes], (len(texts), n_features))
    if char:
        words: list[str] = []
        ends = []
        for doc in docs:
            words += doc.split()
            ends.append(len(words))
        rows, codes, vocabulary = _factorized(words, ends)
        by_word = _matrix(rows, codes, (len(texts), len(vocabulary)))
        grams: list[str] = []
        ends = []
        for entry in vocabulary:  # as scikit-learn's char_wb analyzer sees each word: lowercased, split on whitespace
            for piece in (entry.lower() if lowercase else entry).split():
                for low, high in char:
                    grams += char_wb_ngrams(piece, low, high)
            ends.append(len(grams))
        rows, codes, distinct = _factorized(grams, ends)
        total = total + by_word @ _matrix(rows, buckets(distinct, n_features)[codes], (len(vocabulary), n_features))
        total.sort_indices()
    return total
