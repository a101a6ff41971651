"""Audio end to end on tiny synthetic WAVs: train (column and group splits, each encoder), predict a table or
a folder, cross-validate by group, and one-line CLI errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from audio_helpers import RATE, audio_config, make_tones
from cli_helpers import one_line_error, run_cli

import kiln
from kiln.errors import KilnError
from kiln.features.audio_io import CACHE


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "audio-cache"))


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    return make_tones(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def trained(tones: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audio_run") / "run"
    config = audio_config(tones, column="split")
    config["input_features"][0]["augmentation"] = {"time_shift": 0.05, "gain_db": 3.0, "noise": 0.05, "freq_mask": 2, "time_mask": 4}
    kiln.train(config, output=out, progress=False)
    return out


def test_column_split_trains_and_predicts_a_table_and_a_folder(trained: Path, tones: Path):
    metrics = json.loads((trained / "metrics.json").read_text())
    model = kiln.load(trained)
    table = pd.read_csv(tones)
    assert "test" in json.dumps(metrics) and "validation" not in metrics  # the split column: test rows, no validation
    table_pred = model.predict(tones)  # relative paths resolve against the table's folder
    folder_pred = model.predict(tones.parent / "clips")
    assert len(table_pred) == len(table) == len(folder_pred)
    assert list(folder_pred.columns)[0] == "path" and Path(folder_pred["path"][0]).is_absolute()
    by_file = dict(zip(folder_pred["path"], folder_pred["label_prediction"]))
    resolved = [str((tones.parent / p).resolve()) for p in table["path"]]
    assert [by_file[p] for p in resolved] == table_pred["label_prediction"].tolist()
    assert (table_pred["label_prediction"] == table["label"]).mean() >= 0.8


def test_column_split_uses_the_columns_rows(tones: Path):
    from kiln.supervised.task import load_splits
    from kiln.supervised.config import load_supervised_config

    frames, report = load_splits(load_supervised_config(audio_config(tones, column="split", validation=0.2)))
    table = pd.read_csv(tones)
    assert report["rows"]["test"] == (table["split"] == "test").sum()
    assert report["rows"]["train"] + report["rows"]["validation"] == (table["split"] == "train").sum()


def test_group_split_keeps_speakers_apart(tones: Path):
    from kiln.supervised.config import load_supervised_config
    from kiln.supervised.task import load_splits

    frames, _ = load_splits(load_supervised_config(audio_config(tones, group="speaker", validation=0.3, test=0.3)))
    speakers = {name: set(frame["speaker"]) for name, frame in frames.items()}
    assert len(speakers) == 3 and all(speakers[a].isdisjoint(speakers[b]) for a in speakers for b in speakers if a < b)


@pytest.mark.parametrize("model", [{"type": "cnn", "channels": [4], "audio": "1d", "hidden": [8]},
                                   {"type": "transformer", "d_model": 16, "heads": 2, "layers": 1},
                                   {"type": "mlp", "hidden": [8]}], ids=["conv1d", "transformer", "mlp"])
def test_other_encoders_and_a_second_input(tones: Path, tmp_path: Path, model: dict):
    table = pd.read_csv(tones)
    table["loudness"] = range(len(table))
    table.to_csv(tmp_path / "index.csv", index=False)
    (tmp_path / "clips").symlink_to(tones.parent / "clips")
    config = audio_config(tmp_path / "index.csv")
    config["input_features"].append({"name": "loudness", "type": "numeric"})
    config["model"] = model
    config["trainer"]["epochs"] = 1
    result = kiln.train(config, output=tmp_path / "run", progress=False)
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 1.0


def test_group_cross_validation(tones: Path):
    config = audio_config(tones, group="speaker", test=0.0)
    config["trainer"]["epochs"] = 1
    result = kiln.cross_validate(config, folds=3, progress=False)
    assert result["folds"] == 3 and len(result["metrics"]["accuracy"]["per_fold"]) == 3
    with pytest.raises(KilnError, match="more than the 3 groups"):
        kiln.cross_validate(config, folds=4, progress=False)


def test_cache_is_reused_across_folds(tones: Path):
    config = audio_config(tones, group="speaker", test=0.0)
    config["input_features"][0]["cache"] = True
    config["trainer"]["epochs"] = 1
    CACHE.clear()
    kiln.cross_validate(config, folds=3, progress=False)
    assert CACHE.misses == len(pd.read_csv(tones))  # each file decoded once for all folds


@pytest.mark.parametrize("case, facts", [
    ("missing", ["file not found"]),
    ("not_audio", ["not a readable WAV/FLAC/OGG file"]),
    ("truncated", ["not a readable WAV/FLAC/OGG file"]),
    ("empty", ["zero-length audio"]),
])
def test_cli_bad_audio_is_a_one_line_exit_2(tones: Path, trained: Path, tmp_path: Path, capsys, monkeypatch, case, facts):
    good = (tones.parent / "clips" / "0_low.wav").read_bytes()
    bad = tmp_path / f"{case}.wav"
    if case == "not_audio":
        bad.write_text("hello")
    elif case == "truncated":
        bad.write_bytes(good[:30])
    elif case == "empty":
        sf.write(bad, [], RATE)
    table = tmp_path / "predict.csv"
    pd.DataFrame({"path": [str(tones.parent / "clips" / "0_low.wav"), bad.name]}).to_csv(table, index=False)
    one_line_error(run_cli(capsys, monkeypatch, "predict", trained, table, "-o", tmp_path / "p.csv"), *facts, "row 1", str(bad))
    train_table = tmp_path / "train.csv"
    rows = pd.read_csv(tones)
    rows["path"] = [str(tones.parent / p) for p in rows["path"]]
    rows.loc[5, "path"] = str(bad)
    rows.to_csv(train_table, index=False)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(audio_config(train_table)))
    one_line_error(run_cli(capsys, monkeypatch, "train", cfg, "-o", tmp_path / "run"), *facts, "row 5", str(bad))


def test_cli_predict_folder(trained: Path, tones: Path, tmp_path: Path, capsys, monkeypatch):
    code, out, err = run_cli(capsys, monkeypatch, "predict", trained, tones.parent / "clips", "-o", tmp_path / "p.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(pd.read_csv(tones))
    stereo = tmp_path / "stereo"
    stereo.mkdir()
    t = np.arange(44_100 // 4) / 44_100
    wave = 0.4 * np.sin(2 * np.pi * 1500 * t) + np.random.default_rng(1).normal(scale=0.02, size=len(t))  # like the training tones
    sf.write(stereo / "hi.flac", np.stack([wave, wave], axis=1), 44_100)  # stereo, 44.1 kHz
    code, _, err = run_cli(capsys, monkeypatch, "predict", trained, stereo, "-o", tmp_path / "s.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "s.csv")["label_prediction"].tolist() == ["high"]
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(run_cli(capsys, monkeypatch, "predict", trained, empty, "-o", tmp_path / "q.csv"), "no .wav/.flac/.ogg files")


def test_explanations_work_on_spectrograms(trained: Path, tones: Path, tmp_path: Path):
    """Integrated gradients over the spectrogram: complete, a (bins x frames) saliency map per row,
    and the attribution sits where the clip is, not in its padding."""
    from kiln.deploy.explain import explain  # captum: the `deploy` extra, installed by `make test`

    report = explain(trained, tones, rows="0:3", output=tmp_path / "explained", repeats=1)
    rows = report["rows"]
    assert len(rows) == 3
    lengths = [sf.info(tones.parent / p).duration for p in pd.read_csv(tones)["path"][:3]]
    for row, seconds in zip(rows, lengths):
        assert row["completeness_error"] < 0.05
        saliency = np.asarray(row["saliency"]["path"])  # (bins, frames)
        assert saliency.ndim == 2 and saliency.shape[0] > 1 and saliency.sum() > 0
        clip_frames = int(seconds / 0.5 * saliency.shape[1])  # max_duration 0.5 s
        assert saliency[:, clip_frames + 2:].sum() < 1e-6 * saliency.sum()  # nothing in the padding
    assert (tmp_path / "explained" / "explain.html").is_file()
    assert list((tmp_path / "explained").glob("saliency_row*_path.png"))
