"""`encoder: ngram` text features: a bag of hashed word (and character) n-grams, fastText-style.

Each text becomes its distinct n-gram buckets (MurmurHash3 as scikit-learn's HashingVectorizer hashes,
kiln.features.hashing, so a vocabulary of any size fits in `buckets`; character n-grams stay within words, so
they are hashed once per distinct word and summed through a text × word count matrix) and one weight per
bucket: tf-idf (idf fitted on the training split, L2-normalised), count or binary (both normalised to sum
1: the mean of the n-gram embeddings). The tensor is (rows, 2, width) float32: bucket ids (1..buckets - 1,
0 = padding; exact in float32 up to 2**24) over their weights. `width` is fitted: the most n-grams a
training row has, at most `max_ngrams`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from kiln.config.section import Section
from kiln.features import background
from kiln.features.base import Feature, text_values

_TOKEN = re.compile(r"(?u)\b\w+\b|[^\w\s]")  # words of any length and single punctuation marks (! ? :) count as tokens
NgramSize = Annotated[int, Field(ge=1, le=10)]
CHUNK_ROWS = 2048  # rows weighted and written at a time (transform)
BACKGROUND_ROWS = 20_000  # rows in all splits from which a second core hashes some of them (NgramTextFeature.prefetch)
HASHED_HERE = 0.25  # of the training split, the share this process hashes while the child hashes the rest (best of
# 0, 1/4, 1/2 on sst2_ngram_cnn.yaml, where this process fits the word-id feature meanwhile; docs/benchmarks.md)


class NgramConfig(Section):
    """The `ngram:` block of a text feature with `encoder: ngram`."""

    word: list[NgramSize] = [1, 2]  # word n-gram sizes; [] for none
    char: list[NgramSize] = []  # character n-gram sizes within word boundaries (e.g. [2, 3, 4, 5]); [] for none
    buckets: int = Field(262_144, ge=16, le=2**24)  # hash table size (embedding rows)
    weighting: Literal["tfidf", "count", "binary", "learned"] = "tfidf"  # learned: a trained score per bucket, softmax over the text's n-grams
    sublinear_tf: bool = False  # tfidf: 1 + log(count) instead of count
    max_ngrams: int = Field(1024, ge=1, le=100_000)  # n-grams kept per text (beyond it, those in the highest buckets are dropped); caps the tensor's width
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # training: drop each n-gram of a text with this probability

    @model_validator(mode="after")
    def _some_ngrams(self) -> "NgramConfig":
        if not self.word and not self.char:
            raise ValueError("ngram needs word or char n-gram sizes (e.g. word: [1, 2])")
        return self


def _key(series: pd.Series) -> np.ndarray:
    """A fingerprint of a column's values (which texts a result belongs to)."""
    return pd.util.hash_pandas_object(series, index=False).to_numpy()


def _ranges(sizes: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 4] → [(1, 2), (4, 4)]: contiguous runs, one vectorizer each."""
    runs: list[tuple[int, int]] = []
    for size in sorted(set(sizes)):
        if runs and runs[-1][1] == size - 1:
            runs[-1] = (runs[-1][0], size)
        else:
            runs.append((size, size))
    return runs


class NgramTextFeature(Feature):
    """A text input as a weighted bag of hashed n-grams (see the module docstring); the text
    feature's class for `encoder: ngram` (config: kiln.features.text.TextConfig)."""

    type = "text"

    def __init__(self, config: Any, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        self.ngram: NgramConfig = config.ngram or NgramConfig()
        self.idf: np.ndarray | None = None  # per bucket (tfidf)
        self.width = 1

    def _texts(self, series: pd.Series) -> list[str]:
        return text_values(series, self.preprocessing, self.config.normalize_digits)

    def counts(self, series: pd.Series, keep: bool = False) -> Any:
        """A (rows, buckets - 1) sparse matrix of n-gram counts. `keep`: hold it for the next call on the
        same texts (fit, then the training split's transform, hash the texts once)."""
        key = _key(series)
        kept = getattr(self, "_kept", None)
        if kept is not None and np.array_equal(kept[0], key):
            self._kept = None
            return kept[1]
        total = self._ahead(series, key)
        if total is None:
            total = self._hash(series)
        if keep:
            self._kept = (key, total)
        return total

    def _hash(self, series: pd.Series) -> Any:
        from kiln.features.hashing import hashed_counts  # scipy.sparse loads when text is hashed

        return hashed_counts(self._texts(series), _TOKEN, _ranges(self.ngram.word), _ranges(self.ngram.char),
                             self.ngram.buckets - 1, self.config.lowercase)

    def _hash_arrays(self, series: pd.Series) -> tuple[np.ndarray, ...]:
        counts = self._hash(series)
        return counts.data, counts.indices, counts.indptr

    # -- hashing ahead, in a forked child (kiln.features.background) ------------------------------
    def prefetch(self, train: pd.Series, later: Sequence[pd.Series]) -> None:
        """With BACKGROUND_ROWS rows or more and an idle core, a forked child hashes the training split but its
        first HASHED_HERE, then the later splits, while this process fits the other features and hashes that
        first part (a text's counts depend on its text alone: the same matrices)."""
        if len(train) + sum(map(len, later)) < BACKGROUND_ROWS or not background.spare_core():
            return
        here = int(len(train) * HASHED_HERE)
        self._queue = [(_key(train), here), *((_key(s), 0) for s in later)]  # each result: its texts, rows hashed here
        self._background = background.Background([partial(self._hash_arrays, part) for part in [train.iloc[here:], *later]])

    def _ahead(self, series: pd.Series, key: np.ndarray) -> Any:
        """The counts of `series` when the child's next result is (the rest of) them, else None."""
        queue = getattr(self, "_queue", [])
        if not queue or not np.array_equal(queue[0][0], key):
            return None
        import scipy.sparse as sp

        head = queue.pop(0)[1]
        first = self._hash(series.iloc[:head]) if head else None
        arrays = self._background.take()
        shape = (len(series) - head, self.ngram.buckets - 1)
        rest = sp.csr_matrix(arrays, shape=shape) if arrays is not None else self._hash(series.iloc[head:])
        if not queue:
            del self._queue, self._background
        return rest if first is None else sp.vstack([first, rest], format="csr")

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, series: pd.Series) -> None:
        self._start()
        self._add(series, keep=True)
        self.fit_finish()

    def fit_partial(self, series: pd.Series) -> None:
        if not hasattr(self, "_df"):
            self._start()
        self._add(series)

    def _start(self) -> None:
        self._df, self._rows, self._longest = np.zeros(self.ngram.buckets - 1, dtype=np.int64), 0, 1

    def _add(self, series: pd.Series, keep: bool = False) -> None:
        counts = self.counts(series, keep)
        self._df += np.bincount(counts.indices, minlength=counts.shape[1])
        self._rows += counts.shape[0]
        self._longest = max(self._longest, int(np.diff(counts.indptr).max(initial=1)))

    def fit_finish(self) -> None:
        if not hasattr(self, "_df"):
            self._start()
        self._set_idf(self._rows, self._df)
        self.width = min(self._longest, self.ngram.max_ngrams)
        del self._df, self._rows, self._longest
        self.fitted = True

    def _set_idf(self, rows: int, df: np.ndarray) -> None:
        self.rows, self.df = rows, df
        self.idf = (np.log((1 + rows) / (1 + df)) + 1).astype(np.float32)  # scikit-learn's smooth idf

    # -- transform ----------------------------------------------------------------------------
    def weights(self, counts: Any) -> Any:
        """Per-row weights of the distinct n-grams, as the config's weighting says."""
        weighted = counts.astype(np.float32)  # a copy: the arithmetic below runs in place on it (float32 throughout)
        mode = self.ngram.weighting
        if mode in ("binary", "learned"):
            weighted.data[:] = 1.0
        if mode == "tfidf":
            if self.ngram.sublinear_tf:
                weighted.data = 1.0 + np.log(weighted.data)
            weighted.data *= self.idf[weighted.indices]  # each count times its bucket's idf
            norms = np.sqrt(np.asarray(self._squares(weighted).sum(1))).ravel()
        else:
            norms = np.asarray(weighted.sum(1)).ravel()
        weighted.data *= np.repeat(1.0 / np.maximum(norms, 1e-12), np.diff(weighted.indptr))
        return weighted

    @staticmethod
    def _squares(weighted: Any) -> Any:
        """weighted.multiply(weighted) without scipy's merge of two copies: the squares on the same structure
        (the same matrix whenever no square underflows to 0, which scipy would drop; then scipy's own)."""
        squares = weighted.data * weighted.data
        if not squares.all():
            return weighted.multiply(weighted)
        return type(weighted)((squares, weighted.indices, weighted.indptr), shape=weighted.shape, copy=False)

    def transform(self, series: pd.Series) -> torch.Tensor:
        counts = self.counts(series)
        # torch's zeros, filled through a numpy view: numpy asks the kernel for huge pages on large arrays, and
        # faulting them in took 0.8 s for all SST-2 rows' (60,284, 2, 720) here against 0.2 s (docs/benchmarks.md)
        tensor = torch.zeros((counts.shape[0], 2, self.width), dtype=torch.float32)
        out = tensor.numpy()
        for start in range(0, counts.shape[0], CHUNK_ROWS):  # small temporaries: reused memory, not fresh pages
            self._fill(out[start : start + CHUNK_ROWS], self.weights(counts[start : start + CHUNK_ROWS]))
        return tensor

    def _fill(self, out: np.ndarray, weighted: Any) -> None:
        """Each row's first n-grams (bucket order: those past `width` are dropped) into `out` (rows, 2, width):
        bucket ids + 1 (0 is padding) over their weights."""
        counts = np.diff(weighted.indptr)
        lengths = np.minimum(counts, self.width)
        ids, data = weighted.indices, weighted.data
        if (lengths < counts).any():
            keep = np.arange(len(ids)) - np.repeat(weighted.indptr[:-1], counts) < np.repeat(lengths, counts)
            ids, data = ids[keep], data[keep]
        filled = np.arange(self.width) < lengths[:, None]  # each row's first `length` slots, in row order
        out[:, 0][filled] = ids + 1
        out[:, 1][filled] = data

    def slot_names(self, text: Any) -> dict[int, str]:
        """The n-grams of one text by the id its tensor holds for them (bucket + 1; n-grams sharing a bucket
        joined by ' | '): what explain labels each slot with. The n-grams of kiln.features.hashing, one text."""
        from kiln.features.hashing import buckets

        doc = self._texts(pd.Series([text]))[0]
        doc = doc.lower() if self.config.lowercase else doc
        tokens = _TOKEN.findall(doc)
        grams = [" ".join(tokens[i : i + n]) for n in sorted(set(self.ngram.word)) for i in range(len(tokens) - n + 1)]
        for word in doc.split():
            padded = f" {word} "
            for low, high in _ranges(self.ngram.char):
                sizes = range(low, min(high, len(padded)) + 1)
                grams += [padded[i : i + n] for n in sizes for i in range(len(padded) - n + 1)] if sizes else [padded]
        names: dict[int, list[str]] = {}
        for gram, bucket in zip(grams, buckets(grams, self.ngram.buckets - 1).tolist()):
            if gram not in names.setdefault(bucket + 1, []):
                names[bucket + 1].append(gram)
        return {slot: " | ".join(n) for slot, n in names.items()}

    # -- state --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Width and document frequencies (tfidf: the buckets seen in training and their counts)."""
        seen = np.flatnonzero(self.df) if self.ngram.weighting == "tfidf" else np.array([], dtype=np.int64)
        return {"width": self.width, "rows": self.rows, "df_buckets": seen.tolist(), "df": self.df[seen].tolist()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.width = int(state["width"])
        df = np.zeros(self.ngram.buckets - 1, dtype=np.int64)
        df[np.asarray(state["df_buckets"], dtype=np.int64)] = np.asarray(state["df"], dtype=np.int64)
        self._set_idf(int(state["rows"]), df)
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        return {"encoder": "ngram", "buckets": self.ngram.buckets, "width": self.width,
                "learned_weights": self.ngram.weighting == "learned", "dropout": self.ngram.dropout}

