"""Reading audio for `type: audio` features: decode (soundfile), mono downmix, resample (scipy), and a
spectrogram cache keyed by file and preprocessing config (memory, plus `.npy` files on disk)."""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioReadError(ValueError):
    """A file that cannot be used; the message is the reason (the caller adds feature, row and file)."""


def read_audio(source: str | Path | bytes, sample_rate: int) -> np.ndarray:
    """Mono float32 samples at `sample_rate`: channels averaged, other rates resampled (polyphase)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise AudioReadError("file not found" if not Path(source).exists() else "not a file")
    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        data, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError, EOFError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        reason = str(exc).split(": ", 1)[-1] if "Error opening" in str(exc) else str(exc)
        raise AudioReadError(f"not a readable WAV/FLAC/OGG file ({reason.strip() or type(exc).__name__})") from None
    if data.size == 0:
        raise AudioReadError("zero-length audio (no samples)")
    wave = data.mean(axis=1)
    if not np.isfinite(wave).all():
        raise AudioReadError("audio has NaN or infinite samples")
    if rate != sample_rate:
        g = math.gcd(int(rate), int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, int(rate) // g).astype("float32")
    return np.ascontiguousarray(wave, dtype="float32")


def folder_table(folder: str | Path, column: str) -> "Any":
    """A one-column table of the audio files in `folder` (sorted, absolute paths)."""
    import pandas as pd

    files = sorted(p.resolve() for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return pd.DataFrame({column: [str(p) for p in files]})


class SpectrogramCache:
    """Computed spectrograms by key: an in-memory LRU (bounded in bytes) over optional `.npy` files."""

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self.bytes, self.max_bytes = 0, max_bytes
        self.hits = self.disk_hits = self.misses = 0

    @staticmethod
    def folder() -> Path:
        root = os.environ.get("KILN_CACHE_DIR") or Path.home() / ".cache" / "kiln"
        return Path(root) / "audio"

    @staticmethod
    def key(path: str, settings: str) -> str | None:
        """Key of a file's spectrogram: path, size and modification time, and the extraction settings."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{settings}".encode()).hexdigest()

    def get(self, key: str, disk: bool) -> np.ndarray | None:
        value = self.memory.get(key)
        if value is not None:
            self.memory.move_to_end(key)
            self.hits += 1
            return value
        if disk:
            file = self.folder() / key[:2] / f"{key}.npy"
            try:
                value = np.load(file, allow_pickle=False)
            except (OSError, ValueError):
                value = None
            if value is not None:
                self.disk_hits += 1
                self._remember(key, value)
                return value
        self.misses += 1
        return None

    def put(self, key: str, value: np.ndarray, disk: bool) -> None:
        self._remember(key, value)
        if disk:
            from kiln.io import atomic_path

            try:
                with atomic_path(self.folder() / key[:2] / f"{key}.npy") as tmp:
                    with open(tmp, "wb") as handle:
                        np.save(handle, value, allow_pickle=False)
            except OSError:
                pass  # a read-only or full cache folder only costs recomputation

    def _remember(self, key: str, value: np.ndarray) -> None:
        self.memory[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.max_bytes and len(self.memory) > 1:
            _, old = self.memory.popitem(last=False)
            self.bytes -= old.nbytes

    def clear(self) -> None:
        self.memory.clear()
        self.bytes = self.hits = self.disk_hits = self.misses = 0


CACHE = SpectrogramCache()
