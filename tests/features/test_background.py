"""kiln.features.background: results computed in a forked child come back exactly; a child that fails or is
stopped early leaves no process behind and its results are computed here instead. The n-gram bag's hashing
ahead (half the training split, then the later splits) gives the tensors hashing in one process gives."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.features import background, ngrams
from kiln.features.background import Background

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "cores", lambda: 2)
    monkeypatch.setattr(background, "spare_core", lambda: True)


def children() -> set[int]:
    """This process's live or unreaped children."""
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as handle:
        return {int(pid) for pid in handle.read().split()}


def test_results_come_back_exactly_and_in_order() -> None:
    big = np.arange(3_000_000, dtype=np.int64)  # far beyond a pipe's buffer
    jobs = [lambda: (big, np.array([1.5, -0.0], np.float32)), lambda: (np.zeros((2, 0), np.int32),), lambda: ()]
    work = Background(jobs)
    first, second, third = work.take(), work.take(), work.take()
    assert np.array_equal(first[0], big) and first[1].tobytes() == np.array([1.5, -0.0], np.float32).tobytes()
    assert second[0].shape == (2, 0) and second[0].dtype == np.int32 and third == ()
    assert work.take() is None and work.pid not in children()


def test_a_failing_job_answers_none_and_leaves_no_child() -> None:
    def fails() -> tuple[np.ndarray, ...]:
        raise RuntimeError("boom")

    work = Background([lambda: (np.ones(3),), fails, lambda: (np.ones(3),)])
    assert np.array_equal(work.take()[0], np.ones(3))
    assert work.take() is None and work.take() is None
    assert work.pid not in children()


def test_closing_early_stops_the_child() -> None:
    work = Background([lambda: (np.ones(10_000_000),), lambda: (np.ones(1),)])
    work.close()
    assert work.pid not in children() and work.take() is None


def test_no_fork_computes_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    work = Background([lambda: (np.ones(1),)])
    assert work.pid == 0 and work.take() is None


def test_one_core_is_never_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    monkeypatch.setattr(background, "cores", lambda: 1)
    assert not background.spare_core()  # this process runs: no other core


TEXTS = pd.Series(["a good film", "a bad film", "good good fun", None, "Bad plot !", "fun fun", "the end."] * 5)


def make(feature_kwargs: dict) -> ngrams.NgramTextFeature:
    from kiln.features import build_feature
    from kiln.features.text import TextConfig
    from kiln.supervised.config import PreprocessingConfig

    return build_feature(TextConfig(name="t", type="text", encoder="ngram", ngram={"buckets": 512, **feature_kwargs}),
                         PreprocessingConfig())


def encode(feature_kwargs: dict, prefetch: bool) -> tuple[dict, list[torch.Tensor]]:
    feature = make(feature_kwargs)
    train, later = TEXTS[:20], [TEXTS[20:30].reset_index(drop=True), TEXTS[30:]]
    if prefetch:
        feature.prefetch(train, later)
        assert hasattr(feature, "_background")
    feature.fit(train)
    return feature.state(), [feature.transform(s) for s in [*later, train]]


@pytest.mark.parametrize("kwargs", [{"word": [1, 2], "char": [2, 3]}, {"word": [1], "max_ngrams": 2}])
def test_ngram_hashing_ahead_gives_the_same_tensors(monkeypatch: pytest.MonkeyPatch, kwargs: dict) -> None:
    monkeypatch.setattr(ngrams, "BACKGROUND_ROWS", 1)
    state, tensors = encode(kwargs, prefetch=True)
    expected_state, expected = encode(kwargs, prefetch=False)
    assert state == expected_state
    assert all(torch.equal(a, b) for a, b in zip(tensors, expected, strict=True))


def test_ngram_hashing_ahead_falls_back_when_the_child_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ngrams, "BACKGROUND_ROWS", 1)
    expected_state, expected = encode({}, prefetch=False)
    monkeypatch.setattr(ngrams.NgramTextFeature, "_hash_arrays", lambda self, series: 1 / 0)  # raises in the child
    state, tensors = encode({}, prefetch=True)
    assert state == expected_state and all(torch.equal(a, b) for a, b in zip(tensors, expected, strict=True))


def test_no_idle_core_hashes_nothing_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ngrams, "BACKGROUND_ROWS", 1)
    monkeypatch.setattr(background, "spare_core", lambda: False)
    feature = make({})
    feature.prefetch(TEXTS[:20], [TEXTS[20:]])
    assert not hasattr(feature, "_background")


def test_kiln_background_setting_overrides_the_look(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    for setting, expected in (("0", False), ("1", True)):
        monkeypatch.setenv("KILN_BACKGROUND", setting)
        assert background.spare_core() is expected
