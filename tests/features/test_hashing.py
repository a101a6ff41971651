"""kiln's hashed n-gram counts (no scikit-learn import) equal scikit-learn's HashingVectorizer's, bucket for
bucket and count for count: for random texts and n-gram settings, and on the real SMS spam and SST-2 text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer

from kiln.features.hashing import buckets, hashed_counts
from kiln.features.ngrams import _TOKEN, _ranges


def sklearn_counts(texts: list[str], word: list[int], char: list[int], n_features: int, lowercase: bool) -> sp.csr_matrix:
    """The counts as kiln computed them with scikit-learn: word vectorizers over the texts, char_wb ones over the
    distinct words, summed through the texts × words count matrix."""
    common = {"n_features": n_features, "alternate_sign": False, "norm": None, "lowercase": lowercase, "dtype": np.float32}
    parts = [HashingVectorizer(analyzer="word", token_pattern=_TOKEN.pattern, ngram_range=r, **common).transform(texts)
             for r in _ranges(word)]
    vocabulary: dict[str, int] = {}
    rows, columns = [], []
    for row, text in enumerate(texts):
        for w in (text.lower() if lowercase else text).split():
            rows.append(row)
            columns.append(vocabulary.setdefault(w, len(vocabulary)))
    if vocabulary and char:
        by_word = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(len(texts), len(vocabulary)))
        parts += [by_word @ HashingVectorizer(analyzer="char_wb", ngram_range=r, **common).transform(list(vocabulary))
                  for r in _ranges(char)]
    total = sp.csr_matrix(sum(parts[1:], parts[0])) if parts else sp.csr_matrix((len(texts), n_features), dtype=np.float32)
    total.sort_indices()
    return total


def assert_same(mine: sp.csr_matrix, theirs: sp.csr_matrix) -> None:
    assert mine.shape == theirs.shape and mine.dtype == theirs.dtype == np.float32
    mine, theirs = mine.copy(), theirs.copy()
    mine.eliminate_zeros()
    theirs.eliminate_zeros()
    assert np.array_equal(mine.indptr, theirs.indptr)
    assert np.array_equal(mine.indices, theirs.indices)
    assert np.array_equal(mine.data, theirs.data)


ALPHABET = st.sampled_from(list("aAbBcé É日本 ß İ\t\n  !?.,'-0_9") + ["\u00a0", "\u2003", "\x1c", "😀", "ﬁ"])
TEXTS = st.lists(st.text(ALPHABET, max_size=40), min_size=1, max_size=12)
SIZES = st.lists(st.integers(1, 6), max_size=4, unique=True)


@settings(max_examples=100, deadline=None)
@given(texts=TEXTS, word=SIZES, char=SIZES, n_features=st.sampled_from([15, 1023, 2**18 - 1, 2**24 - 1]),
       lowercase=st.booleans())
def test_counts_equal_scikit_learns(texts: list[str], word: list[int], char: list[int], n_features: int, lowercase: bool) -> None:
    if not word and not char:
        word = [1]
    mine = hashed_counts(texts, _TOKEN, _ranges(word), _ranges(char), n_features, lowercase)
    assert_same(mine, sklearn_counts(texts, word, char, n_features, lowercase))


@settings(max_examples=200, deadline=None)
@given(grams=st.lists(st.text(max_size=12), min_size=1, max_size=30), n_features=st.integers(1, 2**24))
def test_buckets_are_scikit_learns_murmurhash(grams: list[str], n_features: int) -> None:
    from sklearn.utils import murmurhash3_32

    grams = [g for g in grams if not any(0xD800 <= ord(c) <= 0xDFFF for c in g)]  # lone surrogates are no UTF-8
    expected = [abs(murmurhash3_32(g, seed=0)) % n_features for g in grams]
    assert buckets(grams, n_features).tolist() == expected


def test_a_hash_of_minus_two_to_the_31_maps_as_in_scikit_learn() -> None:
    """|-2**31| overflows int32 in C, so scikit-learn maps that hash to (2**31 - 1 - (n - 1)) mod n; kiln's int64
    |hash| mod n is the same bucket."""
    for n in (1, 2, 15, 1023, 2**18 - 1, 2**24 - 1, 2**31 - 1):
        assert int(np.abs(np.array([-(2**31)], dtype=np.int64))[0] % n) == (2147483647 - (n - 1)) % n


@pytest.mark.parametrize("path, column, sep", [("sms_spam/sms_spam.tsv", "text", "\t"), ("sst2/train.tsv", "sentence", "\t")])
def test_real_text_hashes_as_scikit_learn_hashed_it(path: str, column: str, sep: str, data_dir: Path) -> None:
    """The configs' n-grams (word 1-2, char 2-5, 2**18 buckets) on all of SMS spam and SST-2's training sentences."""
    texts = pd.read_csv(data_dir / path, sep=sep)[column].fillna("").astype(str).tolist()
    word, char = [1, 2], [2, 3, 4, 5]
    mine = hashed_counts(texts, _TOKEN, _ranges(word), _ranges(char), 2**18 - 1, True)
    assert_same(mine, sklearn_counts(texts, word, char, 2**18 - 1, True))
