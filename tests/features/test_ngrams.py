"""`encoder: ngram` text features: stable hashing, idf fitted on the training split only, weights,
the JSON state round trip, streaming fit, and one-line config errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
from sklearn.utils import murmurhash3_32

from kiln.errors import KilnError
from kiln.features import build_feature
from kiln.features import ngrams
from kiln.features.ngrams import NgramTextFeature
from kiln.features.text import TextConfig
from kiln.supervised.config import PreprocessingConfig, load_supervised_config

TRAIN = pd.Series(["a good film", "a bad film", "good good fun", None, "Bad plot !"])


def make(**ngram) -> NgramTextFeature:
    spec = {"name": "t", "type": "text", "encoder": "ngram", "ngram": {"buckets": 1024, **ngram}}
    feature = build_feature(TextConfig(**spec), PreprocessingConfig())
    assert isinstance(feature, NgramTextFeature)
    return feature


def bag(tensor: torch.Tensor, row: int) -> dict[int, float]:
    ids, weights = tensor[row]
    return {int(i): float(w) for i, w in zip(ids, weights) if i > 0}


def bucket(gram: str, buckets: int = 1024) -> int:
    return abs(murmurhash3_32(gram, seed=0)) % (buckets - 1) + 1  # scikit-learn's FeatureHasher, then 0 = padding


def test_hashing_is_stable_and_independent_of_the_instance() -> None:
    first, second = make(word=[1, 2]), make(word=[1, 2])
    first.fit(TRAIN)
    second.fit(TRAIN[::-1])
    out = first.transform(pd.Series(["good film"]))
    assert torch.equal(out, second.transform(pd.Series(["good film"])))
    assert set(bag(out, 0)) == {bucket("good"), bucket("film"), bucket("good film")}  # murmurhash: same on every run
    assert out.shape == (1, 2, first.width) and out.dtype == torch.float32


def test_tfidf_idf_is_fitted_on_the_training_split_only() -> None:
    feature = make(word=[1])
    feature.fit(TRAIN)
    state = feature.state()
    assert state["rows"] == len(TRAIN)
    assert bucket("plot") - 1 in state["df_buckets"] and bucket("unseenword") - 1 not in state["df_buckets"]
    before = json.dumps(state)
    out = feature.transform(pd.Series(["unseenword good", "good"]))
    assert json.dumps(feature.state()) == before  # transforming other data changes nothing
    weights = bag(out, 0)
    assert weights[bucket("unseenword")] > weights[bucket("good")]  # never seen in training: the highest idf
    for row in range(2):
        assert sum(w * w for w in bag(out, row).values()) == pytest.approx(1.0, rel=1e-5)  # L2-normalised


@pytest.mark.parametrize("weighting", ["count", "binary", "learned"])
def test_count_and_binary_weights_sum_to_one(weighting: str) -> None:
    feature = make(word=[1], weighting=weighting)
    feature.fit(TRAIN)
    weights = bag(feature.transform(pd.Series(["good good fun"])), 0)
    assert sum(weights.values()) == pytest.approx(1.0)
    expected = {"count": 2 / 3, "binary": 1 / 2, "learned": 1 / 2}[weighting]
    assert weights[bucket("good")] == pytest.approx(expected)


def test_char_ngrams_missing_text_and_width_cap() -> None:
    feature = make(word=[], char=[2, 3], max_ngrams=4)
    feature.fit(TRAIN)
    assert feature.width == 4  # capped: longer texts keep 4 n-grams
    out = feature.transform(pd.Series(["good", None, ""]))
    assert len(bag(out, 0)) == 4 and bag(out, 1) == {} and bag(out, 2) == {}


def test_state_round_trips_through_json() -> None:
    feature = make(word=[1, 2], char=[3])
    feature.fit(TRAIN)
    clone = make(word=[1, 2], char=[3])
    clone.load_state(json.loads(json.dumps(feature.state())))
    texts = pd.Series(["a good plot", "new words here", None])
    assert clone.width == feature.width and torch.equal(clone.transform(texts), feature.transform(texts))


def test_streaming_fit_equals_one_fit() -> None:
    whole, streamed = make(word=[1, 2]), make(word=[1, 2])
    whole.fit(TRAIN)
    streamed.fit_partial(TRAIN[:2])
    streamed.fit_partial(TRAIN[2:])
    streamed.fit_finish()
    assert streamed.state() == whole.state()


def _config(model: dict, **text) -> dict:
    return {"input_features": [{"name": "t", "type": "text", "encoder": "ngram", **text}],
            "output_features": [{"name": "y", "type": "binary"}], "model": model}


@pytest.mark.parametrize(("config", "message"), [
    (_config({"type": "rnn"}), "model type 'rnn' cannot take encoder: ngram text inputs; use cnn, linear, mlp"),
    (_config({"type": "transformer", "d_model": 16, "heads": 2}), "model type 'transformer' cannot take encoder: ngram"),
    (_config({"type": "linear"}, ngram={"word": [], "char": []}), "ngram needs word or char n-gram sizes"),
    (_config({"type": "linear"}, ngram={"buckets": 2**25}), "buckets"),
    (_config({"type": "linear"}, ngram={"weighting": "idf"}), "weighting"),
    (_config({"type": "linear"}, ngram={"words": [1]}), "words"),
    (_config({"type": "linear"}, tokenizer="bpe"), "remove tokenizer: bpe"),
    ({**_config({"type": "linear"}), "input_features": [{"name": "t", "type": "text", "ngram": {"word": [1]}}]},
     "an ngram block needs encoder: ngram"),
])
def test_bad_ngram_configs_are_one_line_errors(config: dict, message: str) -> None:
    with pytest.raises(KilnError) as error:
        load_supervised_config(config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_default_ngram_block() -> None:
    config = load_supervised_config(_config({"type": "mlp", "hidden": []}))
    feature = build_feature(config.input_features[0], config.preprocessing)
    assert feature.ngram.word == [1, 2] and feature.ngram.weighting == "tfidf" and np.isclose(feature.ngram.buckets, 262_144)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("abÉé Z1!\t\n.-")), max_size=30), min_size=1, max_size=8),
       st.booleans())
def test_char_ngrams_hashed_per_word_equal_scikit_learns_char_wb(texts: list[str], lowercase: bool) -> None:
    from sklearn.feature_extraction.text import HashingVectorizer

    spec = {"name": "t", "type": "text", "encoder": "ngram", "lowercase": lowercase,
            "ngram": {"buckets": 1024, "word": [], "char": [2, 3, 5]}}
    feature = build_feature(TextConfig(**spec), PreprocessingConfig())
    ours = feature.counts(pd.Series(texts))
    reference = sum(HashingVectorizer(analyzer="char_wb", ngram_range=r, n_features=1023, alternate_sign=False, norm=None,
                                      lowercase=lowercase).transform(texts) for r in ((2, 3), (5, 5)))
    assert (ours != reference).nnz == 0


def test_training_texts_are_hashed_once_and_transform_the_same() -> None:
    feature = make(word=[1, 2], char=[2, 3])
    feature.fit(TRAIN)
    assert feature._kept is not None  # held for the training split's transform
    first = feature.transform(pd.Series(["other"]))  # another split first: the training counts stay held
    reused = feature.transform(TRAIN)
    assert feature._kept is None
    assert torch.equal(reused, feature.transform(TRAIN))  # hashed afresh: the same tensor
    assert torch.equal(first, feature.transform(pd.Series(["other"])))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("abcde fg!")), max_size=40), min_size=1, max_size=10),
       st.integers(1, 12), st.sampled_from(["tfidf", "count", "binary"]))
def test_transform_lays_each_row_out_in_bucket_order_cut_at_width(texts: list[str], max_ngrams: int, weighting: str) -> None:
    """Row r's slots hold its first `width` buckets (+1) in bucket order over their weights, then padding."""
    feature = make(word=[1, 2], char=[2], max_ngrams=max_ngrams, weighting=weighting)
    feature.fit(pd.Series(texts[::-1]))
    weighted = feature.weights(feature.counts(pd.Series(texts)))
    expected = np.zeros((len(texts), 2, feature.width), dtype=np.float32)
    for r in range(len(texts)):
        part = slice(weighted.indptr[r], min(weighted.indptr[r + 1], weighted.indptr[r] + feature.width))
        expected[r, 0, : part.stop - part.start] = weighted.indices[part] + 1
        expected[r, 1, : part.stop - part.start] = weighted.data[part]
    assert np.array_equal(feature.transform(pd.Series(texts)).numpy(), expected)


@pytest.mark.parametrize("sublinear", [False, True])
def test_tfidf_weights_equal_scipys_row_broadcast(sublinear: bool) -> None:
    """Counts times idf (gathered per stored entry) equal scipy's multiply by the idf row, bit for bit."""
    texts = pd.Series(["a good good film", "a bad film !", "good fun fun fun", "", "Bad plot, bad bad acting"] * 3)
    feature = make(word=[1, 2], char=[2, 3], sublinear_tf=sublinear)
    feature.fit(texts)
    counts = feature.counts(texts)
    reference = counts.astype(np.float32)
    if sublinear:
        reference.data = 1.0 + np.log(reference.data)
    reference = reference.multiply(feature.idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(reference.multiply(reference).sum(1))).ravel()
    reference.data = (reference.data * np.repeat(1.0 / np.maximum(norms, 1e-12), np.diff(reference.indptr))).astype(np.float32)
    weighted = feature.weights(counts)
    assert np.array_equal(weighted.indptr, reference.indptr) and np.array_equal(weighted.indices, reference.indices)
    assert np.array_equal(weighted.data, reference.data)


@pytest.mark.parametrize("max_ngrams", [3, 1024])
def test_transform_in_chunks_of_rows_equals_one_chunk(monkeypatch, max_ngrams: int) -> None:
    """transform weighs and writes CHUNK_ROWS rows at a time: chunks of 2 rows give the tensor one chunk gives."""
    texts = pd.Series(["a good good film", "a bad film !", "good fun fun fun", "", None, "Bad plot, bad bad acting"] * 3)
    feature = make(word=[1, 2], char=[2, 3], max_ngrams=max_ngrams)
    feature.fit(texts)
    whole = feature.transform(texts)
    monkeypatch.setattr(ngrams, "CHUNK_ROWS", 2)
    assert torch.equal(feature.transform(texts), whole)


@pytest.mark.parametrize("ngram, column", [({"word": [1, 2], "char": [2, 3, 4, 5], "buckets": 4096}, "sms"),
                                           ({"word": [1], "buckets": 1024, "weighting": "binary"}, "titanic"),
                                           ({"word": [1, 3], "char": [3, 5], "buckets": 64}, "sms")])
def test_slot_names_name_exactly_the_slots_of_each_text(ngram: dict, column: str, data_dir) -> None:
    """explain labels each slot of a row's tensor with the n-grams hashed there: the same slots, on real texts
    (the small table makes n-grams share slots, joined by ' | ')."""
    if column == "sms":
        texts = pd.read_csv(data_dir / "sms_spam" / "sms_spam.tsv", sep="\t").iloc[:300, -1]
    else:
        texts = pd.read_csv(data_dir / "titanic" / "train.csv")["Name"].iloc[:300]
    feature = make(**ngram)
    feature.fit(texts)
    tensor = feature.transform(texts)
    shared = 0
    for row, text in enumerate(texts):
        names = feature.slot_names(text)
        assert set(names) == set(bag(tensor, row)), text
        shared += sum(" | " in n for n in names.values())
    assert shared > 0 or ngram["buckets"] > 64
    assert make(word=[1, 2], buckets=1024).slot_names("Good film") == {bucket("good"): "good", bucket("film"): "film",
                                                                       bucket("good film"): "good film"}
