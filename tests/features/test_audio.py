"""Audio features: the DSP against stored reference values, reading (downmix, resample), padding and the
mask, the spectrogram cache, augmentation, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from kiln.errors import KilnError
from kiln.features.audio import AudioConfig, AudioFeature
from kiln.features.audio_io import CACHE, read_audio
from kiln.features.spectrogram import dct_matrix, log_mel, mel_filterbank, mfcc
from kiln.models.augment import SpectrogramAugment

# HTK mel triangles for n_fft=16, 8 kHz, 4 mels, 0-4000 Hz: computed once by hand-written loops from
# mel = 2595 log10(1 + f/700), points evenly spaced in mel, peak-1 triangles on the rfft bins k * 500 Hz.
FILTERBANK_16_8000_4 = [
    [0.0, 0.630352, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.369648, 0.71126, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.28874, 0.994405, 0.50282, 0.011234, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.005595, 0.49718, 0.988766, 0.671784, 0.335892, 0.0],
]
# Orthonormal DCT-II of [1, 2, 3, 4] (c_k = s_k sum x_n cos(pi k (2n+1) / 8), s_0 = 1/2, s_k = 1/sqrt(2)).
DCT_1234 = [5.0, -2.230442, 0.0, -0.158513]


def tone(freq: float, seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype("float32")
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def write(path: Path, wave: np.ndarray, rate: int) -> Path:
    sf.write(path, wave, rate)
    return path


def feature(**options) -> AudioFeature:
    return AudioFeature(AudioConfig(name="clip", type="audio", **{"sample_rate": 8000, "max_duration": 0.5, "cache": False, **options}))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "cache"))
    CACHE.clear()


def test_mel_filterbank_matches_reference_values():
    assert torch.allclose(mel_filterbank(16, 8000, 4), torch.tensor(FILTERBANK_16_8000_4), atol=1e-5)


def test_dct_matches_reference_values():
    assert torch.allclose(dct_matrix(4, 4) @ torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor(DCT_1234), atol=1e-5)
    basis = dct_matrix(40, 40)
    assert torch.allclose(basis @ basis.T, torch.eye(40), atol=1e-5)  # orthonormal


def test_log_mel_peaks_at_the_tone_and_mfcc_is_its_dct():
    rate = 8000
    spec = log_mel(torch.from_numpy(tone(1000.0, 0.5, rate)), rate, 200, 80, 40)
    fb = mel_filterbank(200, rate, 40)
    expected = int(fb[:, round(1000 / (rate / 200))].argmax())  # the filter peaking nearest 1 kHz
    assert int(spec.mean(1).argmax()) == expected
    assert spec.max() < 10 * np.log10((0.5 * 100) ** 2) + 1  # |X| <= A * sum(window) / 2 = 0.5 * 100
    coeffs = mfcc(spec, 13)
    assert coeffs.shape == (13, spec.shape[1])
    assert torch.allclose(coeffs[:, 3], torch.from_numpy(__import__("scipy").fft.dct(spec[:, 3].double().numpy(), norm="ortho")[:13]).float(), atol=1e-2)


def test_stereo_is_downmixed_and_44k_resampled(tmp_path):
    path = write(tmp_path / "stereo44.wav", tone(500.0, 0.25, 44_100, channels=2), 44_100)
    wave = read_audio(path, 8000)
    assert wave.ndim == 1 and abs(len(wave) - 2000) <= 1
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 8000 / len(wave) - 500.0) < 10  # still a 500 Hz tone


def test_transform_pads_crops_masks_and_standardises(tmp_path):
    short = write(tmp_path / "short.wav", tone(300.0, 0.2, 8000), 8000)
    long = write(tmp_path / "long.flac", tone(900.0, 1.5, 8000), 8000)
    f = feature()
    series = pd.Series([short.name, long.name], name="clip")
    series.attrs["source"] = str(tmp_path / "table.csv")  # relative paths resolve against the table's folder
    cleaned, _ = f.clean(series)
    assert cleaned.tolist() == [str(short), str(long)]
    f.fit(cleaned)
    x = f.transform(cleaned)
    assert x.shape == (2, 1, 41, f.frames) and f.frames == 4000 // 80 + 1
    mask = x[:, 0, 0]
    assert mask[0].sum() == 1600 // 80 + 1 and mask[1].all()  # 0.2 s of audio; 1.5 s cropped to 0.5 s
    assert (x[0, 0, 1:, mask[0] == 0] == 0).all()  # padded frames are 0 after standardising
    assert f.state()["shape"] == [1, 41, f.frames]


def test_mfcc_features_shape(tmp_path):
    path = write(tmp_path / "a.wav", tone(440.0, 0.3, 8000), 8000)
    f = feature(features="mfcc", n_mfcc=13)
    cleaned, _ = f.clean(pd.Series([str(path)]))
    f.fit(cleaned)
    assert f.transform(cleaned).shape == (1, 1, 14, f.frames)
    with pytest.raises(KilnError, match="n_mfcc"):
        feature(features="mfcc", n_mels=10, n_mfcc=13)


def test_spectrograms_are_cached_in_memory_and_on_disk(tmp_path):
    path = str(write(tmp_path / "a.wav", tone(440.0, 0.3, 8000), 8000))
    f = feature(cache=True)
    f.clean(pd.Series([path]))
    assert CACHE.misses == 1 and list((tmp_path / "cache" / "audio").rglob("*.npy"))
    f.transform(pd.Series([path]))
    assert CACHE.hits == 1 and CACHE.misses == 1
    CACHE.clear()  # a new process: read back from disk, not recomputed
    first = feature(cache=True)._one(path, 0)
    assert CACHE.disk_hits == 1 and CACHE.misses == 0
    CACHE.clear()
    assert np.array_equal(first, feature(cache=False)._one(path, 0))
    CACHE.clear()
    feature(cache=True, n_mels=20)._one(path, 0)  # other settings: another entry
    assert CACHE.misses == 1


@pytest.mark.parametrize("case, message", [
    ("missing", "file not found"),
    ("not_audio", "not a readable WAV/FLAC/OGG file"),
    ("truncated", "not a readable WAV/FLAC/OGG file"),
    ("empty", "zero-length audio"),
])
def test_bad_files_are_one_line_errors_naming_row_and_file(tmp_path, case, message):
    good = write(tmp_path / "good.wav", tone(440.0, 0.3, 8000), 8000)
    bad = tmp_path / f"{case}.wav"
    if case == "not_audio":
        bad.write_text("this is a text file, not audio\n")
    elif case == "truncated":
        bad.write_bytes(good.read_bytes()[:20])  # cut inside the RIFF/fmt header
    elif case == "empty":
        write(bad, np.zeros(0, dtype="float32"), 8000)
    with pytest.raises(KilnError) as err:
        feature().clean(pd.Series([str(good), str(bad)], index=[0, 7]))
    text = str(err.value)
    assert "\n" not in text and message in text and "row 7" in text and str(bad) in text


def test_missing_path_value_is_an_error():
    with pytest.raises(KilnError, match="row 1: missing file path"):
        feature().clean(pd.Series(["x.wav", None]).iloc[1:])


def test_uploaded_bytes_are_decoded(tmp_path):
    path = write(tmp_path / "a.wav", tone(440.0, 0.3, 8000), 8000)
    f = feature()
    by_path = f._one(str(path), 0)
    assert np.array_equal(f._one(path.read_bytes(), 0), by_path)
    with pytest.raises(KilnError, match="uploaded content: not a readable"):
        f._one(b"not audio at all", 3)


def _batch(n: int = 4, bins: int = 8, frames: int = 20) -> torch.Tensor:
    x = torch.randn(n, 1, 1 + bins, frames)
    x[:, :, 0] = 1.0
    x[:, :, 0, 15:] = 0.0
    x[:, :, 1:, 15:] = 0.0
    return x


def test_augmentation_is_training_only_and_seeded():
    aug = SpectrogramAugment(time_shift=3, gain_db=6.0, noise=0.1, freq_mask=2, time_mask=4, gain_per_db=[0.1] * 8)
    x = _batch()
    aug.eval()
    assert torch.equal(aug(x), x)
    aug.train()
    torch.manual_seed(0)
    a = aug(x)
    torch.manual_seed(0)
    b = aug(x)
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert set(a[:, 0, 0].unique().tolist()) <= {0.0, 1.0}  # the mask row stays a mask
    assert (a[:, :, 1:][a[:, :, :1].expand_as(a[:, :, 1:]) == 0] == 0).all()  # nothing added on padding


def test_spec_augment_masks_zero_bands():
    x = _batch()
    x[:, :, 1:, :15] = 1.0
    torch.manual_seed(1)
    out = SpectrogramAugment(freq_mask=8, masks=1).train()(x)
    zero_rows = (out[:, 0, 1:, :15] == 0).all(-1).sum(-1)
    assert zero_rows.max() > 0 and (out[:, :, 0] == x[:, :, 0]).all()


FSDD = Path("/work/shared/data/fsdd")


@pytest.mark.skipif(not (FSDD / "index.csv").is_file(), reason="FSDD not present")
def test_real_fsdd_files():
    from kiln.data import read_table

    table = read_table(FSDD / "index.csv").iloc[[0, 1, 1000]]
    f = feature(max_duration=1.0)
    cleaned, _ = f.clean(table["path"])
    f.fit(cleaned)
    x = f.transform(cleaned)
    assert x.shape == (3, 1, 41, 101) and torch.isfinite(x).all()
    assert 0 < x[:, 0, 0].sum(-1).min() <= 101
