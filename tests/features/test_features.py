"""Each feature type: fitting on training data, transforming, persisting state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kiln.supervised.config import PreprocessingConfig
from kiln.errors import KilnError
from kiln.features import FEATURES, build_feature


def make(spec: dict, **pre: dict):
    cls = FEATURES.get(spec["type"])
    return build_feature(cls.Config(**spec), PreprocessingConfig(**pre))


def roundtrip(feature, spec: dict):
    clone = make(spec)
    clone.load_state(feature.state())
    return clone


def test_numeric_zscore_median_fill_and_clipping():
    spec = {"name": "a", "type": "numeric"}
    f = make(spec, outliers={"clip_quantiles": [0.0, 0.75]})
    train = pd.Series([1.0, 2.0, 3.0, None, 100.0])
    f.fit(train)
    assert f.fill == 2.5  # median of the present values
    out = f.transform(pd.Series([2.5, None, 1000.0])).squeeze(1)
    assert out[0] == out[1]  # missing → median
    assert out[2] == pytest.approx(float(f.transform(pd.Series([f.high])).squeeze()))  # clipped
    assert torch.equal(roundtrip(f, spec).transform(pd.Series([1.0, 7.0])), f.transform(pd.Series([1.0, 7.0])))


def test_numeric_minmax_and_coercion_report():
    f = make({"name": "a", "type": "numeric", "normalization": "minmax"})
    cleaned, report = f.clean(pd.Series(["1", "x", "3", "", None]))
    assert report == {"coerced_non_numeric": 1}  # "x" only; blanks are plain missing values
    f.fit(cleaned)
    np.testing.assert_allclose(f.transform(pd.Series([1.0, 3.0])).squeeze(1).numpy(), [0.0, 1.0])


def test_binary_maps_words_and_rejects_three_values():
    f = make({"name": "s", "type": "binary"})
    f.fit(pd.Series(["male", "female", "male"]))
    assert f.classes == ["female", "male"]
    assert f.transform(pd.Series(["male", "female"])).squeeze(1).tolist() == [1.0, 0.0]
    g = make({"name": "s", "type": "binary"})
    g.fit(pd.Series(["no", "yes"]))
    assert g.classes == ["no", "yes"]
    with pytest.raises(KilnError, match="3 distinct values"):
        make({"name": "s", "type": "binary"}).fit(pd.Series(["a", "b", "c"]))


def test_category_unseen_values_and_missing_fill():
    spec = {"name": "c", "type": "category"}
    f = make(spec)
    f.fit(pd.Series(["a", "b", None, "a"]))
    assert f.vocab == ["<unk>", "a", "b"]
    assert f.transform(pd.Series(["a", "zzz", None])).tolist() == [2, 0, 1]
    assert roundtrip(f, spec).transform(pd.Series(["b"])).tolist() == [3]


def test_category_output_losses_and_metrics():
    f = make({"name": "c", "type": "category"})
    f.fit(pd.Series(["x", "y", "z"]))
    target = f.encode_target(pd.Series(["x", "z"]))
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    assert float(f.loss(logits, target)) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, target)))
    assert f.metrics(logits, target)["accuracy"] == 1.0
    assert list(f.decode(logits)["c_prediction"]) == ["x", "z"]
    with pytest.raises(KilnError, match="not seen in training"):
        f.encode_target(pd.Series(["w"]))


@pytest.mark.parametrize(("loss", "expected"), [("mse", 4.0), ("mae", 2.0), ("huber", 1.5)])
def test_numeric_output_losses(loss, expected):
    f = make({"name": "n", "type": "numeric", "normalization": "none", "loss": loss})
    f.fit(pd.Series([0.0, 1.0]))
    assert float(f.loss(torch.tensor([[2.0]]), torch.tensor([0.0]))) == pytest.approx(expected)


def test_binary_output_is_sigmoid_cross_entropy():
    f = make({"name": "b", "type": "binary"})
    f.fit(pd.Series([0, 1]))
    logits, target = torch.tensor([[0.3]]), torch.tensor([1.0])
    assert float(f.loss(logits, target)) == pytest.approx(-np.log(1 / (1 + np.exp(-0.3))), rel=1e-5)


def test_text_word_and_char_vocabularies():
    spec = {"name": "t", "type": "text", "max_length": 4, "vocab_size": 5}
    f = make(spec)
    f.fit(pd.Series(["the cat sat", "the dog", "The cat!"]))
    assert f.vocab[:4] == ["<pad>", "<unk>", "the", "cat"]
    ids = f.transform(pd.Series(["the cat runs fast away", None]))
    assert ids.tolist() == [[2, 3, 1, 1], [0, 0, 0, 0]]  # unknown → 1, truncated, empty → padding
    assert torch.equal(roundtrip(f, spec).transform(pd.Series(["cat the"])), f.transform(pd.Series(["cat the"])))
    c = make({"name": "t", "type": "text", "tokenizer": "char", "max_length": 3})
    c.fit(pd.Series(["abc"]))
    assert c.transform(pd.Series(["cab"])).tolist() == [[c.vocab.index(ch) for ch in "cab"]]


def test_image_arrays_and_files(tmp_path):
    f = make({"name": "img", "type": "image"})
    arrays = pd.Series([np.full((8, 8), v, dtype="float32") for v in (0.0, 8.0, 16.0)])
    f.fit(arrays)
    out = f.transform(arrays)
    assert out.shape == (3, 1, 8, 8) and abs(float(out.mean())) < 1e-5
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((10, 12, 3), i * 100, dtype="uint8")).save(path)
        paths.append(str(path))
    g = make({"name": "img", "type": "image", "height": 6, "width": 5})
    g.fit(pd.Series(paths))
    assert g.transform(pd.Series(paths)).shape == (3, 3, 6, 5)
    with pytest.raises(KilnError, match="cannot read image"):
        g.transform(pd.Series([str(tmp_path / "missing.png")]))


def test_is_missing_blank_strings_and_arrays() -> None:
    """NaN/None and blank strings are missing, in object and string columns; array cells (image pixels)
    are never stringified or taken for blank."""
    from kiln.features.base import is_missing

    assert is_missing(pd.Series(["a", " ", None, np.nan], dtype=object)).tolist() == [False, True, True, True]
    assert is_missing(pd.Series(["a", "  ", None], dtype="string")).tolist() == [False, True, True]
    assert is_missing(pd.Series([np.zeros(64), None, np.ones(64)])).tolist() == [False, True, False]
    assert is_missing(pd.Series([1.0, np.nan])).tolist() == [False, True]
