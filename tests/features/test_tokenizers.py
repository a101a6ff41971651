"""Tokenizers: word, char and the Hugging Face subword kinds (bpe, wordpiece) — round trips,
reserved ids, unknowns, JSON state, deterministic fitting, vocabulary limits, end-to-end training."""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kiln
from kiln.data import read_table
from kiln.errors import KilnError
from kiln.features.tokenizers import TOKENIZERS, Tokenizer, build_tokenizer, tokenizer_from_state

KINDS = ["word", "char", "bpe", "wordpiece"]
CORPUS = [
    "The cat sat on the mat.",
    "A dog and a cat are friends!",
    "Hello there, my friend; how are you?",
    "Then the other thing happened, and the cat ran.",
    "Free entry: call now to win a prize",
    "Are you coming home tonight? I am.",
    "It's late, isn't it?",
] * 3
TEXT = "Hello cat, the dog sat on a mat!"


def fitted(kind: str, **options) -> object:
    return build_tokenizer(kind, **options).fit(CORPUS)


def test_all_kinds_are_registered():
    assert set(KINDS) <= set(TOKENIZERS.names())


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("word", "hello cat , the dog sat on a mat !"),  # lowercased tokens joined by single spaces
        ("char", "hello cat, the dog sat on a mat!"),  # exact after lowercasing
        ("bpe", "hello cat, the dog sat on a mat!"),  # "▁" marks spaces, so spacing comes back exactly
        ("wordpiece", "hello cat, the dog sat on a mat!"),  # "##" pieces rejoined, BERT's space cleanup
    ],
)
def test_decode_encode_round_trip(kind, expected):
    tok = fitted(kind)
    ids = tok.encode(TEXT)
    assert ids and tok.unk_id not in ids
    assert tok.decode(ids) == expected
    assert tok.decode([*ids, 0, 0]) == expected  # padding is dropped
    assert tok.encode_batch([TEXT, ""]) == [ids, []]


def test_subword_round_trip_details():
    bpe = fitted("bpe", lowercase=False)
    assert bpe.decode(bpe.encode("Then  the cat.")) == "Then  the cat."  # case and double spaces kept
    wp = fitted("wordpiece")
    pieces = [wp.vocab[i] for i in wp.encode("catting")]
    assert pieces[0] == "cat" and all(p.startswith("##") for p in pieces[1:])
    assert wp.decode(wp.encode("catting")) == "catting"
    assert wp.decode(wp.encode("it's")) == "it ' s"  # BERT splits apostrophes; the decoder keeps the spaces


@pytest.mark.parametrize("kind", KINDS)
def test_pad_and_unk_ids(kind):
    tok = fitted(kind)
    assert tok.vocab[:2] == ["<pad>", "<unk>"] and (tok.pad_id, tok.unk_id) == (0, 1)
    assert 0 not in tok.encode(TEXT)
    assert tok.vocab_size == len(tok.vocab)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("word", "cat zebra", [None, 1]),  # unseen word
        ("char", "c☃", [None, 1]),  # unseen character
        ("bpe", "c☃", [None, 1]),  # unseen character → one <unk> piece
        ("wordpiece", "cat z☃bra", [None, 1]),  # a word with an unseen character → one <unk>
    ],
)
def test_unknowns_map_to_unk(kind, text, expected):
    ids = fitted(kind).encode(text)
    assert len(ids) == len(expected)
    for got, want in zip(ids, expected):
        assert got == want if want is not None else got > 1


@pytest.mark.parametrize("kind", KINDS)
def test_state_survives_json(kind):
    tok = fitted(kind, vocab_size=40)
    state = json.loads(json.dumps(tok.state()))
    clone = tokenizer_from_state(state)
    assert type(clone) is type(tok) and clone.vocab == tok.vocab
    texts = [TEXT, "zebra ☃ friends", "<pad> <unk>", ""]
    assert clone.encode_batch(texts) == tok.encode_batch(texts)
    assert clone.decode(tok.encode(TEXT)) == tok.decode(tok.encode(TEXT))
    if kind in ("bpe", "wordpiece"):
        assert set(state) == {"kind", "lowercase", "json"}
        assert json.loads(state["json"])["model"]["type"] == {"bpe": "BPE", "wordpiece": "WordPiece"}[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_fitting_is_deterministic(kind):
    # tokenizers' own WordPiece trainer gives a different vocabulary almost every fit
    # (huggingface/tokenizers#1794); kiln fixes the alphabet and the "##" pieces up front
    states = {json.dumps(fitted(kind, vocab_size=50).state()) for _ in range(4)}
    assert len(states) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [5, 12, 40])
def test_vocab_size_limits_the_vocabulary(kind, size):
    tok = fitted(kind, vocab_size=size)
    assert tok.vocab_size <= size
    assert max(i for text in CORPUS for i in tok.encode(text)) < tok.vocab_size
    if kind in ("bpe", "wordpiece") or (kind == "char" and size <= 12):  # enough to fill it
        assert tok.vocab_size == size
    if kind in ("bpe", "wordpiece"):
        assert tok.vocab_size < fitted(kind, vocab_size=10_000).vocab_size


def test_lowercase_option_for_subwords():
    for kind in ("bpe", "wordpiece"):
        assert fitted(kind).encode("THE CAT") == fitted(kind).encode("the cat")
        cased = fitted(kind, lowercase=False)
        assert cased.encode("THE CAT") != cased.encode("the cat")
        assert tokenizer_from_state(cased.state()).lowercase is False


def test_subword_tokenizer_needs_fitting():
    with pytest.raises(KilnError, match="before it was fitted"):
        build_tokenizer("bpe").encode("hi")


def test_missing_tokenizers_library_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` fail
    for kind in ("bpe", "wordpiece"):
        with pytest.raises(KilnError, match="pip install tokenizers"):
            build_tokenizer(kind)
    build_tokenizer("word").fit(CORPUS)  # the built-in kinds do not need it


def test_tokenizer_module_imports_without_the_library(monkeypatch):
    import kiln.features

    monkeypatch.setitem(sys.modules, "tokenizers", None)
    monkeypatch.setattr(kiln.features, "tokenizers", kiln.features.tokenizers)  # restored afterwards
    monkeypatch.delitem(sys.modules, "kiln.features.tokenizers")  # re-imported fresh, then restored
    fresh = importlib.import_module("kiln.features.tokenizers")
    assert {"bpe", "wordpiece"} <= set(fresh.TOKENIZERS.names())


def test_bpe_text_feature_trains_saves_and_loads(data_dir, tmp_path):
    frame = read_table(data_dir / "sms_spam" / "sms_spam.tsv")
    frame = pd.concat([frame[frame.label == "spam"].head(40), frame[frame.label == "ham"].head(60)])
    path = tmp_path / "sms.tsv"
    frame.to_csv(path, sep="\t", index=False)
    config = {
        "data": {"train": str(path), "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
        "input_features": [{"name": "text", "type": "text", "tokenizer": "bpe", "vocab_size": 300, "max_length": 32}],
        "output_features": [{"name": "label", "type": "binary", "positive": "spam"}],
        "model": {"type": "mlp", "hidden": [8]},
        "trainer": {"epochs": 3, "batch_size": 16},
    }
    model = kiln.train(config, output=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "model" / "model.json").read_text())
    assert '"kind": "bpe"' in json.dumps(saved["preprocessing"])
    before = model.predict(frame.drop(columns=["label"]))
    after = kiln.load(tmp_path / "run").predict(frame.drop(columns=["label"]))
    pd.testing.assert_frame_equal(before, after)


WORDY = st.lists(st.text(st.sampled_from(list("aAbBé É'!?.,- 0_\t\n") + ["\u00a0", "\x1c", "İ"]), max_size=30), max_size=12)


@settings(max_examples=100, deadline=None)
@given(texts=WORDY, lowercase=st.booleans(), size=st.integers(3, 12), length=st.integers(1, 8))
def test_word_tokenizer_counts_and_ids_equal_tokenizing_text_by_text(texts, lowercase, size, length):
    """The word tokenizer finds tokens once per distinct word (kiln.features.words): its counts (in first-seen
    order, which breaks vocabulary ties) and padded ids equal tokenizing each text on its own."""
    tokenizer = build_tokenizer("word", vocab_size=size, lowercase=lowercase)
    expected = Counter(t for text in texts for t in tokenizer.split(tokenizer._prepare(text)))
    assert list(tokenizer.count(texts).items()) == list(expected.items())
    tokenizer.fit(texts)
    assert tokenizer.vocab == build_tokenizer("word", vocab_size=size, lowercase=lowercase).fit_counts(expected).vocab
    per_text = Tokenizer.encode_padded(tokenizer, texts, length)  # the base class: encode each text, cut, pad
    assert np.array_equal(tokenizer.encode_padded(texts, length), per_text)
    assert per_text.dtype == np.int64 and per_text.shape == (len(texts), length)
