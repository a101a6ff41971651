"""kiln's hold-out split (numpy, no scikit-learn import) holds out exactly the rows scikit-learn's
`train_test_split` held out before it: for random sizes, fractions, seeds and labels, and on the real
configs' data (every documented figure depends on these splits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

import kiln.data.splitting as splitting
import kiln.supervised.task as task
from kiln.config import raw_config
from kiln.data.splitting import split_indices
from kiln.supervised.config import load_supervised_config

ROOT = Path(__file__).resolve().parents[2]


def sklearn_split(n: int, fraction: float, seed: int, labels: pd.Series | None, name: str = "hold-out",
                  groups: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The split as kiln drew it with scikit-learn (groups and fraction 0 are not scikit-learn's: kiln's code)."""
    if fraction <= 0 or groups is not None:
        return split_indices(n, fraction, seed, labels, name, groups)
    counts = labels.value_counts() if labels is not None else None
    stratify = labels if counts is not None and len(counts) > 1 and counts.min() >= 2 and fraction * n >= len(counts) else None
    keep, held = train_test_split(np.arange(n), test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(keep), np.sort(held)


@st.composite
def labelled(draw: st.DrawFn) -> tuple[int, pd.Series]:
    """Labels of a few or many classes: random (imbalanced), balanced (tied remainders), or one dominant class."""
    classes = draw(st.integers(1, 30))
    shape = draw(st.sampled_from(["random", "balanced", "dominant"]))
    if shape == "balanced":
        values = np.repeat(np.arange(classes), draw(st.integers(1, 12)))
    elif shape == "dominant":
        rare = np.arange(1, classes + 1).repeat(draw(st.integers(1, 3)))
        values = np.concatenate([np.zeros(draw(st.integers(2, 200)), dtype=int), rare])
    else:
        values = np.asarray(draw(st.lists(st.integers(0, classes - 1), min_size=2, max_size=300)))
    values = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(values)
    return len(values), pd.Series([f"c{v}" for v in values])


FRACTIONS = st.one_of(st.sampled_from([0.1, 0.2, 0.25, 1 / 3, 0.5, 1.0 - 0.1, 0.1 / 0.8, 0.15 / 0.85]),
                      st.floats(0.005, 0.95))


@settings(max_examples=400, deadline=None)
@given(data=labelled(), fraction=FRACTIONS, seed=st.integers(0, 2**32 - 1), stratified=st.booleans())
def test_split_holds_out_the_rows_scikit_learn_held_out(data: tuple[int, pd.Series], fraction: float, seed: int,
                                                       stratified: bool) -> None:
    n, labels = data
    if n - np.ceil(fraction * n) < 1:
        return  # kiln refuses it before drawing (KilnError)
    mine = split_indices(n, fraction, seed, labels if stratified else None)
    try:
        theirs = sklearn_split(n, fraction, seed, labels if stratified else None)
    except ValueError as error:  # the kept side is too small for one row of each class: kiln splits unstratified
        assert "should be greater or equal to the number of classes" in str(error)
        theirs = sklearn_split(n, fraction, seed, None)
    assert np.array_equal(mine[0], theirs[0]) and np.array_equal(mine[1], theirs[1])
    assert mine[0].dtype == theirs[0].dtype


def test_ties_between_classes_are_broken_by_the_same_draws() -> None:
    """Equal class sizes leave equal remainders: which class gets the extra row is drawn, as scikit-learn draws it."""
    labels = pd.Series(list("abcdefg") * 3)
    for seed in range(50):
        mine, theirs = split_indices(21, 0.5, seed, labels), sklearn_split(21, 0.5, seed, labels)
        assert np.array_equal(mine[1], theirs[1])


def test_stratifies_only_when_the_held_out_fraction_covers_every_class() -> None:
    """2.4 held-out rows for 3 classes: 3 are held out, unstratified (the rule kiln always had)."""
    labels = pd.Series(list("abc") * 4)
    for seed in range(20):
        mine, theirs = split_indices(12, 0.2, seed, labels), sklearn_split(12, 0.2, seed, None)
        assert np.array_equal(mine[1], theirs[1])


@pytest.mark.parametrize("path, sample", [("titanic.yaml", None), ("sms_spam_ngram.yaml", None), ("sms_spam.yaml", None),
                                          ("sst2_ngram.yaml", 0.1), ("sst2_ngram_large.yaml", None), ("digits_mlp.yaml", None)])
def test_the_real_configs_split_as_before(path: str, sample: float | None, data_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_DATA", str(data_dir))
    raw = raw_config(ROOT / "examples" / path)
    if sample is not None:
        raw["data"]["sample"] = sample
    config = load_supervised_config(raw)
    mine, _ = task.load_splits(config)
    monkeypatch.setattr(splitting, "split_indices", sklearn_split)
    monkeypatch.setattr(task, "split_indices", sklearn_split)
    theirs, _ = task.load_splits(config)
    assert mine.keys() == theirs.keys() and len(mine["train"]) > 0
    for name in mine:
        pd.testing.assert_frame_equal(mine[name], theirs[name])
