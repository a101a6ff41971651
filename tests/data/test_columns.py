"""`column:` on input features: several features read one source column in cleaning, the preprocessor
(fit, transform, streaming fit) and streamed chunks; a missing column is one line with a did-you-mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.data import clean_frame
from kiln.data.preprocessor import Preprocessor
from kiln.data.streaming import StreamingTable
from kiln.errors import KilnError
from kiln.supervised.config import load_supervised_config


def table(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "awful", "great", "poor"]
    return pd.DataFrame({
        "review": [" ".join(rng.choice(words, 4)) for _ in range(rows)],
        "rooms": rng.integers(1, 5, rows),  # integers: a numeric and a category feature read them differently
        "label": rng.choice(["pos", "neg"], rows),
    })


def config(**data: object) -> dict:
    return {
        "data": data,
        "input_features": [
            {"name": "review", "type": "text", "max_length": 6},
            {"name": "review_bag", "column": "review", "type": "text", "encoder": "ngram",
             "ngram": {"word": [1], "char": [], "buckets": 64}},
            {"name": "rooms_n", "column": "rooms", "type": "numeric"},
            {"name": "rooms_c", "column": "rooms", "type": "category"},
        ],
        "output_features": [{"name": "label", "type": "binary"}],
        "model": {"type": "linear", "embedding_dim": 4},
    }


def test_two_features_read_one_column_and_keep_their_own_cleaning() -> None:
    cfg = load_supervised_config(config())
    pre = Preprocessor(cfg)
    raw = table()
    frame, report = clean_frame(raw, pre.inputs, pre.outputs, drop_duplicates=False)
    assert list(frame.columns) == ["review", "rooms", "label"]  # each source column once
    assert frame["rooms"].tolist() == raw["rooms"].tolist() and frame["rooms"].dtype.kind == "i"  # not coerced to float for the category
    pre.fit(frame)
    assert pre.inputs[3].state()["vocab"] == ["1", "2", "3", "4"]  # "1", not "1.0" (the numeric feature's cleaning)
    data = pre.transform(frame)
    assert set(data.inputs) == {"review", "review_bag", "rooms_n", "rooms_c"}
    assert data.inputs["review"].dtype == torch.int64 and data.inputs["review_bag"].dim() == 3
    # predicting from the raw table (source columns only) gives the same tensors as the cleaned training frame
    again = pre.transform(raw.drop(columns=["label"]), targets=False)
    for name, tensor in data.inputs.items():
        assert torch.equal(again.inputs[name], tensor)
    assert report["rows_used"] == len(raw)


def test_a_column_read_by_features_that_clean_alike_is_cleaned_once() -> None:
    cfg = load_supervised_config({**config(), "input_features": [
        {"name": "a", "column": "rooms", "type": "numeric"}, {"name": "b", "column": "rooms", "type": "numeric"}]})
    pre = Preprocessor(cfg)
    raw = table().astype({"rooms": str})
    raw.loc[3, "rooms"] = "n/a"
    frame, report = clean_frame(raw, pre.inputs, pre.outputs, drop_duplicates=False)
    assert frame["rooms"].dtype == "float64" and np.isnan(frame.loc[3, "rooms"])
    assert report["coerced_non_numeric"] == {"a": 1, "b": 1} and report["missing_values"] == {"a": 1, "b": 1}


def test_missing_source_column_is_one_line_with_did_you_mean() -> None:
    cfg = load_supervised_config(config())
    pre = Preprocessor(cfg)
    raw = table().rename(columns={"review": "reviews"})
    with pytest.raises(KilnError, match=r"column\(s\) \['review'\] not found in training data \(read by features 'review', "
                                        r"'review_bag'; did you mean 'reviews'\?\); it has: reviews, rooms, label"):
        clean_frame(raw, pre.inputs, pre.outputs, drop_duplicates=False, where="training data")
    fitted = pre.fit(table())
    with pytest.raises(KilnError, match=r"\['rooms'\] not found in prediction data \(read by features 'rooms_n', 'rooms_c'\)"):
        fitted.transform(table().drop(columns=["rooms"]), targets=False, where="prediction data")


def test_streamed_chunks_hold_each_source_column_once(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    table(200).to_parquet(path)
    cfg = load_supervised_config(config(train=str(path), streaming=True, chunk_rows=50))
    pre = Preprocessor(cfg)
    stream = StreamingTable(cfg.data, pre.inputs, pre.outputs)
    chunks = list(stream.chunks("train", whole=True))
    assert all(list(c.columns) == ["review", "rooms", "label"] for c in chunks)
    streamed = Preprocessor(cfg).fit_stream(iter(chunks))
    whole = Preprocessor(cfg).fit(pd.concat(chunks, ignore_index=True))
    assert streamed.state()["rooms_c"] == whole.state()["rooms_c"]
    assert streamed.state()["review"] == whole.state()["review"]
