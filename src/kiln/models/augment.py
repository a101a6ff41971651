"""Training-time augmentation layers (identity in eval mode, torch global RNG)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class GaussianNoise(nn.Module):
    """Add N(0, std^2) noise to numeric inputs while training."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.std <= 0:
            return x
        return x + torch.randn_like(x) * self.std


class ImageAugment(nn.Module):
    """Random horizontal flip, rotation and pad-and-crop on (batch, C, H, W) images."""

    def __init__(self, flip: bool = False, rotate: float = 0.0, crop: int = 0) -> None:
        super().__init__()
        self.flip, self.rotate, self.crop = bool(flip), float(rotate), int(crop)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        if self.flip:
            x = self._flip(x)
        if self.rotate > 0:
            x = self._rotate(x)
        if self.crop > 0:
            x = self._crop(x)
        return x

    @staticmethod
    def _flip(x: Tensor) -> Tensor:
        chosen = torch.rand(x.size(0), device=x.device) < 0.5
        return torch.where(chosen[:, None, None, None], x.flip(-1), x)

    def _rotate(self, x: Tensor) -> Tensor:
        n = x.size(0)
        angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(self.rotate)
        cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _crop(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        p = self.crop
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (n,1,h,1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (n,1,1,w)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(x.size(1), device=x.device)[None, :, None, None]
        return padded[batch, chan, rows, cols]


class SpectrogramAugment(nn.Module):
    """Training-only augmentation of audio feature tensors (batch, 1, 1 + bins, frames), row 0 the frame
    mask: time shift (frames), gain (dB, as a per-bin offset), Gaussian noise, SpecAugment masks."""

    def __init__(self, time_shift: int = 0, gain_db: float = 0.0, noise: float = 0.0, freq_mask: int = 0,
                 time_mask: int = 0, masks: int = 1, gain_per_db: list[float] | None = None) -> None:
        super().__init__()
        self.time_shift, self.gain_db, self.noise = int(time_shift), float(gain_db), float(noise)
        self.freq_mask, self.time_mask, self.masks = int(freq_mask), int(time_mask), int(masks)
        self.register_buffer("gain_per_db", torch.tensor(gain_per_db or [], dtype=torch.float32), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        mask, spec = x[:, :, :1], x[:, :, 1:]
        n, _, bins, frames = spec.shape
        dev = x.device
        if self.time_shift > 0:
            shift = torch.randint(-self.time_shift, self.time_shift + 1, (n, 1), device=dev)
            source = torch.arange(frames, device=dev)[None] - shift  # (n, frames)
            inside = ((source >= 0) & (source < frames)).to(x.dtype)[:, None, None, :]
            index = source.clamp(0, frames - 1)[:, None, None, :]
            mask = mask.gather(3, index) * inside
            spec = spec.gather(3, index.expand(n, 1, bins, frames)) * inside
        if self.gain_db > 0 and self.gain_per_db.numel() == bins:
            gain = (torch.rand(n, device=dev) * 2 - 1) * self.gain_db
            spec = spec + gain[:, None, None, None] * self.gain_per_db[None, None, :, None] * mask
        if self.noise > 0:
            spec = spec + torch.randn_like(spec) * self.noise * mask
        for _ in range(self.masks if self.freq_mask > 0 else 0):
            spec = spec * (1 - _band(n, bins, self.freq_mask, dev, spec.dtype)[:, None, :, None])
        for _ in range(self.masks if self.time_mask > 0 else 0):
            spec = spec * (1 - _band(n, frames, self.time_mask, dev, spec.dtype)[:, None, None, :])
        return torch.cat([mask, spec], dim=2)


def _band(n: int, size: int, max_width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(n, size) 0/1 rows, each with one run of ones of random width in [0, max_width] at a random start."""
    width = torch.randint(0, min(max_width, size) + 1, (n, 1), device=device)
    start = (torch.rand(n, 1, device=device) * (size - width + 1)).floor()
    pos = torch.arange(size, device=device)[None]
    return ((pos >= start) & (pos < start + width)).to(dtype)
