"""Audio front end in plain torch: power STFT (`torch.stft`), HTK mel filterbank, log-mel (dB) and MFCC.

Formulas (no torchaudio, no librosa):
- mel(f) = 2595 * log10(1 + f / 700) (HTK); filter m is a triangle on the FFT bin frequencies rising from
  mel point m-1 to m and falling to m+1, with n_mels + 2 points evenly spaced in mel between f_min and f_max
  (peak 1, no area normalisation).
- log-mel = 10 * log10(max(mel power, 1e-10)) in dB.
- MFCC = orthonormal DCT-II of the log-mel frame, first n_mfcc coefficients.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

AMIN = 1e-10  # power floor before the log (-100 dB)


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, peak 1, on the rfft bin frequencies."""
    f_max = sample_rate / 2 if f_max is None else f_max
    bins = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    points = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


@lru_cache(maxsize=16)
def dct_matrix(n_mels: int, n_mfcc: int) -> torch.Tensor:
    """(n_mfcc, n_mels) orthonormal DCT-II: c_k = s_k * sum_n x_n cos(pi k (2n + 1) / (2 N))."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi * k * (2 * n + 1) / (2 * n_mels)) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


@lru_cache(maxsize=16)
def _window(win_length: int) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True)


def power_spectrogram(wave: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """|STFT|^2, (n_fft // 2 + 1, frames); centred frames, reflect padding, periodic Hann window."""
    pad_mode = "reflect" if wave.shape[-1] > n_fft // 2 else "constant"
    spec = torch.stft(wave, n_fft, hop_length, n_fft, _window(n_fft), center=True, pad_mode=pad_mode, return_complex=True)
    return spec.real.square() + spec.imag.square()


def log_mel(wave: torch.Tensor, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
            f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """(n_mels, frames) log-mel spectrogram in dB."""
    mel = mel_filterbank(n_fft, sample_rate, n_mels, f_min, f_max) @ power_spectrogram(wave, n_fft, hop_length)
    return 10.0 * torch.log10(mel.clamp(min=AMIN))


def mfcc(log_mel_db: torch.Tensor, n_mfcc: int) -> torch.Tensor:
    """(n_mfcc, frames) MFCCs of a (n_mels, frames) log-mel spectrogram."""
    return dct_matrix(log_mel_db.shape[0], n_mfcc) @ log_mel_db


def frame_count(samples: int, hop_length: int) -> int:
    """Frames `power_spectrogram` makes for `samples` samples (centred framing)."""
    return samples // hop_length + 1
