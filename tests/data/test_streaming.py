"""Larger-than-memory data (data.streaming): preprocessing fitted chunk by chunk equals the in-memory
fit, streamed training equals in-memory training on the same file, hash splits are stable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import kiln
from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.data.streaming import owners_of, read_chunks, read_numbered, split_of
from kiln.errors import KilnError
from kiln.supervised.config import load_supervised_config
from kiln.supervised.streaming import rebatch, shuffled

WORDS = ["good", "bad", "fine", "great", "awful", "ok", "nice", "poor"]


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    x[rng.random(rows) < 0.05] = np.nan
    text = [" ".join(rng.choice(WORDS, 3)) for _ in range(rows)]
    score = np.nan_to_num(x) + np.array([t.count("good") + t.count("great") - t.count("bad") for t in text])
    return pd.DataFrame({"id": np.arange(rows) + seed * 10_000, "x": x, "z": rng.uniform(0, 100, rows),
                         "colour": rng.choice(["red", "green", "blue", None], rows), "review": text,
                         "label": np.where(score > 0.3, "pos", "neg")})


def files(folder: Path) -> dict[str, str]:
    paths = {}
    for i, split in enumerate(("train", "validation", "test")):
        paths[split] = str(folder / f"{split}.parquet")
        frame(600 if split == "train" else 150, i).to_parquet(paths[split])
    return paths


def config(paths: dict[str, str], streaming: bool, **data: object) -> dict:
    return {
        "data": {**paths, "streaming": streaming, "shuffle": False, "chunk_rows": 64, **data},
        "preprocessing": {"drop_duplicates": False},
        "input_features": [{"name": "x", "type": "numeric"}, {"name": "z", "type": "numeric", "normalization": "minmax"},
                           {"name": "colour", "type": "category"}, {"name": "review", "type": "text", "max_length": 8}],
        "output_features": [{"name": "label", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [16], "embedding_dim": 8},
        "trainer": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "seed": 1},
    }


def test_streaming_fit_equals_in_memory_fit(tmp_path: Path) -> None:
    paths = files(tmp_path)
    cfg = load_supervised_config(config(paths, True))
    whole = Preprocessor(cfg).fit(pd.read_parquet(paths["train"]))
    chunked = Preprocessor(cfg).fit_stream(read_chunks(paths["train"], ["x", "z", "colour", "review", "label"], 50))
    a, b = whole.state(), chunked.state()
    for name in ("x", "z"):
        assert a[name]["low"] is b[name]["low"] is None
        for key in ("fill", "shift", "scale"):
            assert a[name][key] == pytest.approx(b[name][key], rel=1e-12, abs=1e-12), (name, key)
    assert a["colour"] == b["colour"] and a["review"] == b["review"] and a["label"] == b["label"]


def test_streaming_training_equals_in_memory(tmp_path: Path) -> None:
    """Same file, same (file) order, same fitted preprocessing: the same metrics up to float rounding."""
    paths = files(tmp_path)
    memory = kiln.train(config(paths, False), output=tmp_path / "memory")
    stream = kiln.train(config(paths, True), output=tmp_path / "stream")
    for split in ("validation", "test"):
        for metric in ("loss", "accuracy", "roc_auc"):
            assert stream.metrics[split][metric] == pytest.approx(memory.metrics[split][metric], abs=1e-5), (split, metric)
    assert [r["train_loss"] for r in stream.history] == pytest.approx([r["train_loss"] for r in memory.history], abs=1e-5)
    report = (tmp_path / "stream" / "data_report.json").read_text()
    assert '"streaming": true' in report and '"train_rows": 600' in report
    assert (tmp_path / "stream" / "model" / "stats.json").is_file()


def test_a_train_file_above_stream_above_mb_streams_on_its_own(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = files(tmp_path)
    with caplog.at_level("WARNING", logger="kiln"):
        auto = kiln.train(config(paths, False, stream_above_mb=0.001), output=tmp_path / "auto")
    assert "above data.stream_above_mb" in caplog.text
    assert '"streaming": true' in (tmp_path / "auto" / "data_report.json").read_text()
    assert "streaming: true" in (tmp_path / "auto" / "config.yaml").read_text()  # what ran is what the run records
    stream = kiln.train(config(paths, True), output=tmp_path / "stream")
    assert auto.metrics["test"]["loss"] == pytest.approx(stream.metrics["test"]["loss"], abs=1e-7)
    memory = kiln.train(config(paths, False, stream_above_mb=None), output=tmp_path / "memory")
    assert "streaming" not in (tmp_path / "memory" / "data_report.json").read_text()


def test_streaming_with_hash_split_and_shuffle_buffer(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    frame(900, 5).to_csv(path, index=False)
    cfg = config({"train": str(path)}, True, shuffle=True, shuffle_buffer=100,
                 split={"validation": 0.2, "test": 0.1, "key": "id"})
    model = kiln.train(cfg, output=tmp_path / "run")
    assert set(model.metrics) == {"validation", "test"} and len(model.history) == 3
    again = kiln.train(cfg, output=tmp_path / "again")
    assert again.metrics == model.metrics  # seeded shuffle: runs repeat exactly


def test_split_of_is_stable_and_chunk_independent() -> None:
    rows = np.arange(100_000, dtype=np.uint64)
    codes = split_of(rows, 7, 0.1, 0.2)
    assert abs((codes == 1).mean() - 0.1) < 0.01 and abs((codes == 2).mean() - 0.2) < 0.01
    parts = np.concatenate([split_of(rows[i : i + 999], 7, 0.1, 0.2) for i in range(0, len(rows), 999)])
    assert (parts == codes).all()
    keys = pd.Series([f"user{i}" for i in range(1000)])
    assert (split_of(keys, 7, 0.1, 0.2) == split_of(keys, 7, 0.1, 0.2)).all()
    assert not (split_of(keys, 8, 0.1, 0.2) == split_of(keys, 7, 0.1, 0.2)).all()


def test_shuffle_buffer_keeps_every_row_once() -> None:
    parts = (TensorData({"v": torch.arange(i, i + 37)}) for i in range(0, 370, 37))
    batches = list(rebatch(shuffled(parts, 50, torch.Generator().manual_seed(0)), 16))
    seen = torch.cat([b.inputs["v"] for b in batches])
    assert sorted(seen.tolist()) == list(range(370)) and seen.tolist() != list(range(370))
    assert [len(b) for b in batches] == [16] * 23 + [2]


def test_streaming_errors_are_one_line(tmp_path: Path) -> None:
    paths = files(tmp_path)
    cfg = config(paths, True)
    cfg["input_features"][0]["name"] = "nope"
    with pytest.raises(KilnError, match=r"column\(s\) \['nope'\] not found in .*train.parquet"):
        kiln.train(cfg, output=tmp_path / "run")
    with pytest.raises(KilnError, match="data.streaming reads Parquet or CSV files"):
        kiln.train(config({"train": "sklearn:iris"}, True), output=tmp_path / "run2")
    bad = tmp_path / "x.jsonl"
    bad.write_text("{}\n")
    with pytest.raises(KilnError, match="data.streaming reads Parquet files or directories and .csv/.tsv files"):
        kiln.train(config({"train": str(bad)}, True), output=tmp_path / "run3")


def test_streaming_resume_reuses_the_saved_preprocessing(tmp_path: Path) -> None:
    paths = files(tmp_path)
    cfg = config(paths, True)
    cfg["trainer"]["epochs"] = 1
    first = kiln.train(cfg, output=tmp_path / "run")
    resumed = kiln.train(cfg, resume=tmp_path / "run")  # finished: the checkpoint says so, nothing is retrained
    assert resumed.metrics == first.metrics and len(resumed.history) == 1


@pytest.mark.parametrize("suffix", [".parquet", "/", ".csv"])
def test_shards_read_each_row_once(tmp_path: Path, suffix: str) -> None:
    """Two workers' shares cover the file (or a directory of 2 files) once, with file row numbers;
    owners_of agrees with them."""
    path = tmp_path / f"t{suffix}"
    data = frame(203, 0)
    if suffix == "/":
        path.mkdir()
        data.iloc[:90].to_parquet(path / "a.parquet", row_group_size=40)
        data.iloc[90:].to_parquet(path / "b.parquet", row_group_size=40)
    else:
        data.to_parquet(path, row_group_size=40) if suffix == ".parquet" else data.to_csv(path, index=False)
    total = None if suffix == ".csv" else 203
    seen = []
    for rank in (0, 1):
        rows = []
        for first, number, chunk in read_numbered(path, ["id"], 16, (rank, 2)):
            numbers = np.arange(first, first + len(chunk))
            assert chunk["id"].tolist() == numbers.tolist()  # id == row number in this table
            assert set(owners_of(numbers, number, total, 2)) == {rank}
            rows += numbers.tolist()
        seen.append(rows)
    assert sorted(seen[0] + seen[1]) == list(range(203))
    assert abs(len(seen[0]) - len(seen[1])) <= 16
