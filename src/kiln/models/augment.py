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
