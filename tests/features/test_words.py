"""kiln.features.words: tokens found once per distinct whitespace-separated word are the tokens the pattern
finds in each whole text (for the word tokenizer's and the n-gram bag's patterns, on fuzzed Unicode text), and
split_words gives texts it split lately back without splitting them again."""

from __future__ import annotations

import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.features import words
from kiln.features.ngrams import _TOKEN
from kiln.features.tokenizers import _WORD
from kiln.features.words import expand, positions, split_words

# every character Python counts as whitespace, word characters, apostrophes and punctuation
SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
ALPHABET = st.sampled_from(list("aAbéÉ日ß İ!?.,'-0_9😀ﬁ") + SPACES)
TEXTS = st.lists(st.text(ALPHABET, max_size=30), max_size=10)


@settings(max_examples=200, deadline=None)
@given(texts=TEXTS, pattern=st.sampled_from([_TOKEN, _WORD]))
def test_tokens_per_distinct_word_are_the_tokens_of_each_text(texts: list[str], pattern) -> None:
    codes, rows, distinct = split_words(texts).tokens(pattern)
    found = [[distinct[c] for c in codes[rows == row]] for row in range(len(texts))]
    assert found == [pattern.findall(text) for text in texts]
    first_seen = list(dict.fromkeys(t for text in texts for t in pattern.findall(text)))
    assert distinct == first_seen  # in order of first appearance, as a Counter over the texts would list them


@settings(max_examples=100, deadline=None)
@given(texts=TEXTS)
def test_words_are_str_split(texts: list[str]) -> None:
    found = split_words(texts)
    assert [found.vocabulary[c] for c in found.codes] == [w for text in texts for w in text.split()]
    assert found.rows.tolist() == [row for row, text in enumerate(texts) for _ in text.split()]
    assert found.texts == len(texts)


def test_texts_split_lately_are_not_split_again() -> None:
    words.clear_kept()
    train, validation, test, other = ["a b", "c"], ["d e"], ["f"], ["g"]
    first = split_words(train)
    assert split_words(list(train)) is first  # equal texts, another list
    split_words(validation)
    split_words(train[:1])
    assert split_words(train) is first  # the training split survives the validation split and its own half
    split_words(test)
    split_words(other)
    assert split_words(train) is not first  # three others came after it
    texts = ["x y"]
    kept = split_words(texts)
    texts[0] = "z"  # the caller changes its list: not the words kept
    assert split_words(texts) is not kept and split_words(["x y"]) is kept


def test_tokens_are_found_once_per_pattern() -> None:
    found = split_words(["it's a test", "a test!"])
    assert found.tokens(_WORD) is found.tokens(_WORD)
    assert found.tokens(_TOKEN)[2] == ["it", "'", "s", "a", "test", "!"]
    assert found.tokens(_WORD)[2] == ["it's", "a", "test", "!"]


def test_expand_and_positions() -> None:
    assert expand(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]
    assert expand(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []
    assert positions(np.array([0, 0, 2, 2, 2, 3]), 5).tolist() == [0, 1, 0, 1, 2, 0]


def test_features_sharing_a_column_encode_as_each_alone() -> None:
    """A word-id feature and an n-gram bag on one column (the words split once, kept between them), with
    different lowercasing, give the tensors each gives alone."""
    import pandas as pd
    import torch

    from kiln.data.preprocessor import Preprocessor
    from kiln.supervised.config import load_supervised_config

    frame = pd.DataFrame({"t": ["The cat sat.", "A DOG ran!", "it's the cat", None, "the the dog"], "y": [0, 1, 0, 1, 0]})
    features = [{"name": "ids", "column": "t", "type": "text", "vocab_size": 6, "max_length": 4},
                {"name": "bag", "column": "t", "type": "text", "encoder": "ngram", "lowercase": False,
                 "ngram": {"word": [1, 2], "char": [2], "buckets": 64}}]

    def encoded(inputs: list[dict]) -> dict[str, torch.Tensor]:
        config = load_supervised_config({"data": {"train": "unused.csv"}, "input_features": inputs,
                                         "output_features": [{"name": "y", "type": "binary"}]})
        pre = Preprocessor(config).fit(frame)
        head = {f"{name} head": value for name, value in pre.transform(frame.iloc[:3]).inputs.items()}
        return {**head, **pre.transform(frame).inputs}

    together = encoded(features)
    for feature in features:
        words.clear_kept()
        alone = encoded([feature])
        for key in (feature["name"], f"{feature['name']} head"):
            assert torch.equal(together[key], alone[key])
