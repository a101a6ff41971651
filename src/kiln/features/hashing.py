"""Hashed n-gram counts: the buckets and counts scikit-learn's `HashingVectorizer(alternate_sign=False,
norm=None, dtype=float32)` gives, without importing scikit-learn (its `sklearn.utils` costs ~1 s of start-up;
tests/features/test_hashing.py checks equality against it). The same tokens and n-grams, then MurmurHash3
(x86, 32-bit, seed 0, signed; the `mmh3` package) of each n-gram's UTF-8 bytes, bucket = |hash| mod
`n_features`. Imported when text is hashed (scipy.sparse loads then).

Each distinct string is hashed once: the texts are split on whitespace and the distinct words found; a word's
tokens and character n-grams depend on the word alone (the token pattern never matches whitespace), so they are
found once per distinct word, and word n-grams of two or more tokens are hashed once per distinct n-gram."""

from __future__ import annotations

import re
from collections.abc import Iterable

import mmh3
import numpy as np
import pandas as pd
import scipy.sparse as sp

from kiln.features.words import flatten, gc_paused, split_words


def word_ngram_buckets(codes: np.ndarray, distinct: list[str], rows: np.ndarray, sizes: list[int],
                       n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The buckets of the word n-grams of the given sizes within each row (`codes`: the tokens in row order as
    codes into `distinct`, `rows` the row of each; an n-gram is its tokens joined by one space), and their rows.
    Each distinct n-gram is joined and hashed once."""
    ids, where = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    grams, names = codes, distinct  # n-gram codes by start position, and the n-grams they stand for
    for n in range(1, max(sizes, default=0) + 1):
        if n > len(codes):
            break
        starts = rows[: len(rows) - n + 1]
        inside = starts == rows[n - 1 :]  # the n tokens belong to one row
        if n > 1:  # an n-gram is an (n-1)-gram followed by a token
            pairs = grams[:-1][inside] * len(distinct) + codes[n - 1 :][inside]
            grams = np.full(len(starts), -1, np.int64)
            grams[inside], kinds = pd.factorize(pairs)
            prefix, last = np.divmod(kinds, len(distinct))
            names = [f"{names[p]} {distinct[t]}" for p, t in zip(prefix.tolist(), last.tolist())]
        if n in sizes:
            ids.append(buckets(names, n_features)[grams[inside]])
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


def _ones(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A one at each (row, column), duplicates kept and indices unsorted (a product sums them alike); `rows` in
    any order."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((np.ones(len(rows), np.float32), columns[order], indptr), shape=shape)


def hashed_counts(texts: list[str], token: re.Pattern[str], word: list[tuple[int, int]], char: list[tuple[int, int]],
                  n_features: int, lowercase: bool) -> sp.csr_matrix:
    """(texts, n_features) float32 counts (indices sorted, no duplicates) of the hashed word n-grams (`token`
    finds the words, and must never match whitespace; one (low, high) run of sizes each) plus the char_wb n-grams
    of the whitespace-separated words (hashed once per distinct word, then summed through a texts × words count
    matrix)."""
    with gc_paused():
        docs = [text.lower() for text in texts] if lowercase else texts
        words = split_words(docs)
        rows, columns = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]  # ones of the texts × [words | buckets] matrix
        if word:
            codes, token_rows, distinct = words.tokens(token)
            ids, where = word_ngram_buckets(codes, distinct, token_rows, [n for low, high in word for n in range(low, high + 1)],
                                            n_features)
            rows.append(where)
            columns.append(ids + len(words.vocabulary))
        if char:
            rows.append(words.rows)
            columns.append(words.codes)
        # [words | word n-grams] @ [char n-grams per word; identity]: the char and word counts summed in one
        # product, computed transposed (texts as columns): transposing that back leaves each row's indices sorted
        left = _ones(np.concatenate(rows), np.concatenate(columns), (len(texts), len(words.vocabulary) + n_features)).T
        right = sp.hstack([_per_word(words.vocabulary, char, n_features, lowercase).T,
                           sp.identity(n_features, np.float32, "csr")], format="csr")
        return (right @ left).T.tocsr()


def _per_word(vocabulary: list[str], char: list[tuple[int, int]], n_features: int, lowercase: bool) -> sp.csr_matrix:
    """(words, n_features) counts of each distinct word's char_wb n-grams (as char_wb sees the word: lowercased,
    split on whitespace)."""
    if not char:
        return sp.csr_matrix((len(vocabulary), n_features), dtype=np.float32)
    pieces, owner = flatten([(entry.lower() if lowercase else entry).split() for entry in vocabulary])
    ids, rows = char_wb_buckets(pieces, char, n_features)
    return _ones(owner[rows], ids, (len(vocabulary), n_features))
