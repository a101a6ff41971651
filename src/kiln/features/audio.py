"""Audio features: a column of WAV/FLAC/OGG paths (relative to the table's folder, or absolute) or file
content (bytes, as `kiln serve` passes it) → a standardised log-mel or MFCC spectrogram of fixed length.

Each tensor row is (1, 1 + bins, frames): row 0 of the middle axis is the frame mask (1 where the clip
has audio, 0 where it was padded to `max_duration`), the other rows are the spectrogram, standardised per
bin with the training split's mean and std and 0 on padded frames. Spectrograms are cached per file and
extraction settings (see `audio_io.SpectrogramCache`), so epochs, trials and folds compute each once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from kiln.errors import KilnError
from kiln.features import FEATURES
from kiln.features.audio_io import CACHE, AudioReadError, read_audio
from kiln.features.base import Feature, FeatureConfig
from kiln.features.spectrogram import frame_count, log_mel, mfcc

EXTRACTION_VERSION = 1  # bump when the extraction code changes what it computes (invalidates caches)


class AudioAugmentationConfig(BaseModel):
    """Training-only augmentation on the spectrogram, drawn from the trainer's seeded generator."""

    model_config = ConfigDict(extra="forbid")
    time_shift: float = Field(0.0, ge=0.0, le=10.0)  # max shift in seconds (either way; vacated frames are padding)
    gain_db: float = Field(0.0, ge=0.0, le=60.0)  # max |gain| in dB (exact on log-mel; MFCC: coefficient 0)
    noise: float = Field(0.0, ge=0.0, le=10.0)  # std of Gaussian noise added to the standardised features
    freq_mask: int = Field(0, ge=0)  # SpecAugment: max width (bins) of each frequency mask
    time_mask: int = Field(0, ge=0)  # SpecAugment: max width (frames) of each time mask
    masks: int = Field(1, ge=1, le=10)  # masks of each kind per example


class AudioConfig(FeatureConfig):
    type: Literal["audio"]
    sample_rate: int = Field(16_000, ge=1000, le=192_000)  # files at other rates are resampled to this
    max_duration: float = Field(1.0, gt=0.0, le=60.0)  # seconds; longer clips are cropped, shorter padded
    features: Literal["log_mel", "mfcc"] = "log_mel"
    window_ms: float = Field(25.0, gt=0.0, le=1000.0)  # STFT window (and FFT) length
    hop_ms: float = Field(10.0, gt=0.0, le=1000.0)
    n_mels: int = Field(40, ge=2, le=512)
    n_mfcc: int = Field(13, ge=1, le=512)
    f_min: float = Field(0.0, ge=0.0)
    f_max: float | None = Field(None, gt=0.0)  # None: sample_rate / 2
    cache: bool = True  # also keep spectrograms on disk ($KILN_CACHE_DIR or ~/.cache/kiln, under audio/)
    augmentation: AudioAugmentationConfig = AudioAugmentationConfig()


@FEATURES.register("audio")
class AudioFeature(Feature):
    type = "audio"
    Config = AudioConfig

    def __init__(self, config: AudioConfig, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        if config.features == "mfcc" and config.n_mfcc > config.n_mels:
            raise KilnError(f"audio feature '{self.name}': n_mfcc ({config.n_mfcc}) cannot exceed n_mels ({config.n_mels})")
        if config.f_max is not None and config.f_max > config.sample_rate / 2:
            raise KilnError(f"audio feature '{self.name}': f_max {config.f_max} is above the Nyquist frequency {config.sample_rate / 2}")
        c = config
        self.n_fft = max(2, round(c.window_ms * c.sample_rate / 1000))
        self.hop = max(1, round(c.hop_ms * c.sample_rate / 1000))
        self.samples = max(1, round(c.max_duration * c.sample_rate))
        self.frames = frame_count(self.samples, self.hop)
        self.bins = c.n_mfcc if c.features == "mfcc" else c.n_mels
        self.settings = json.dumps({"v": EXTRACTION_VERSION, "sr": c.sample_rate, "samples": self.samples, "kind": c.features,
                                    "n_fft": self.n_fft, "hop": self.hop, "n_mels": c.n_mels, "n_mfcc": c.n_mfcc,
                                    "f_min": c.f_min, "f_max": c.f_max}, sort_keys=True)
        self.mean: list[float] = [0.0] * self.bins
        self.std: list[float] = [1.0] * self.bins

    # -- extraction ---------------------------------------------------------------------------
    def extract(self, wave: np.ndarray) -> np.ndarray:
        """(1 + bins, frames) float32 for mono samples at the feature's rate: mask row, then the spectrogram."""
        c = self.config
        length = min(len(wave), self.samples)
        padded = np.zeros(self.samples, dtype="float32")
        padded[:length] = wave[:length]
        spec = log_mel(torch.from_numpy(padded), c.sample_rate, self.n_fft, self.hop, c.n_mels, c.f_min, c.f_max)
        if c.features == "mfcc":
            spec = mfcc(spec, c.n_mfcc)
        out = np.zeros((1 + self.bins, self.frames), dtype="float32")
        valid = min(self.frames, frame_count(length, self.hop))
        out[0, :valid] = 1.0
        out[1:, :valid] = spec[:, :valid].numpy()
        return out

    def _one(self, value: Any, row: Any) -> np.ndarray:
        """The cached or freshly computed (1 + bins, frames) array of one value; one-line errors."""
        if isinstance(value, (bytes, bytearray)):
            where, key = "uploaded content", None
        elif isinstance(value, (str, Path)):
            where, key = str(value), CACHE.key(str(value), self.settings)
        else:
            raise KilnError(f"audio feature '{self.name}', row {row}: expected a file path, got {type(value).__name__} {value!r:.40}")
        if key is not None:
            cached = CACHE.get(key, self.config.cache)
            if cached is not None:
                return cached
        try:
            out = self.extract(read_audio(value, self.config.sample_rate))
        except AudioReadError as exc:
            raise KilnError(f"audio feature '{self.name}', row {row}: {where}: {exc}") from None
        if key is not None:
            CACHE.put(key, out, self.config.cache)
        return out

    def _stack(self, series: pd.Series) -> np.ndarray:
        arrays = [self._one(value, row) for row, value in series.items()]
        return np.stack(arrays) if arrays else np.zeros((0, 1 + self.bins, self.frames), dtype="float32")

    # -- feature contract ---------------------------------------------------------------------
    def clean(self, series: pd.Series) -> tuple[pd.Series, dict[str, int]]:
        """Resolve relative paths against the table's folder and decode every file once (errors name the
        row and file here, before any split); the spectrograms stay in the cache for `fit`/`transform`."""
        source = series.attrs.get("source")
        base = Path(source).resolve().parent if source else Path.cwd()
        values = []
        for row, value in series.items():
            if value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value.strip()):
                raise KilnError(f"audio feature '{self.name}', row {row}: missing file path")
            if isinstance(value, (str, Path)):
                path = Path(value).expanduser()
                value = str(path if path.is_absolute() else (base / path).resolve())
                self._one(value, row)  # uploaded bytes are decoded once, by `transform`
            values.append(value)
        return pd.Series(values, index=series.index, name=series.name, dtype=object), {}

    def fit(self, series: pd.Series) -> None:
        stacked = self._stack(series)
        mask = stacked[:, 0, :] > 0  # (n, frames)
        frames = stacked[:, 1:, :].transpose(1, 0, 2)[:, mask]  # (bins, valid frames)
        if frames.shape[1] == 0:
            raise KilnError(f"audio feature '{self.name}': the training split has no audio frames")
        std = frames.std(axis=1)
        self.mean = frames.mean(axis=1).astype(float).tolist()
        self.std = np.where(std > 1e-6, std, 1.0).astype(float).tolist()
        self.fitted = True

    def transform(self, series: pd.Series) -> torch.Tensor:
        stacked = self._stack(series)
        mask = stacked[:, :1, :]
        mean = np.asarray(self.mean, dtype="float32")[None, :, None]
        std = np.asarray(self.std, dtype="float32")[None, :, None]
        spec = (stacked[:, 1:, :] - mean) / std * mask
        return torch.from_numpy(np.concatenate([mask, spec], axis=1)[:, None].astype("float32"))

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "shape": [1, 1 + self.bins, self.frames]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std = list(state["mean"]), list(state["std"])
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        """Shape (1, 1 + bins, frames); augmentation settings converted to frames and standardised units."""
        aug = self.config.augmentation.model_dump()
        aug["time_shift"] = round(aug["time_shift"] * self.config.sample_rate / self.hop)
        if aug["gain_db"]:  # a gain of g dB adds g to every log-mel bin; after the DCT, only to c0 (times sqrt(n_mels))
            unit = [1.0] * self.bins if self.config.features == "log_mel" else [self.config.n_mels ** 0.5] + [0.0] * (self.bins - 1)
            aug["gain_per_db"] = [u / s for u, s in zip(unit, self.std)]
        return {"shape": [1, 1 + self.bins, self.frames], "bins": self.bins, "frames": self.frames, "augmentation": aug}
