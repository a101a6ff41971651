"""Image features: array columns (e.g. scikit-learn digits) or PNG/JPG paths, scaled, with augmentation."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from kiln.config.section import Section

from kiln.errors import KilnError
from kiln.features import FEATURES
from kiln.features.base import Feature, FeatureConfig


class AugmentationConfig(Section):
    flip: bool = False  # random horizontal flip
    rotate: float = Field(0.0, ge=0.0, le=360.0)  # max degrees
    crop: int = Field(0, ge=0, le=4096)  # pad-and-random-crop pixels


class ImageConfig(FeatureConfig):
    type: Literal["image"]
    height: int | None = Field(None, ge=1, le=16_384)  # resize target for image files; inferred for arrays
    width: int | None = Field(None, ge=1, le=16_384)
    channels: Literal[1, 3] | None = None  # 1 (grayscale) or 3 (RGB); inferred when omitted
    # global: one mean/std over all pixels; per_pixel: standardise each pixel position (C, H, W) on its own
    # (constant pixels, e.g. always-blank borders, become 0); none: only scale to [0, 1] by the training maximum
    normalization: Literal["global", "per_pixel", "none"] = "global"
    augmentation: AugmentationConfig = AugmentationConfig()


@FEATURES.register("image")
class ImageFeature(Feature):
    type = "image"
    Config = ImageConfig

    def __init__(self, config: ImageConfig, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        self.shape: list[int] = []  # C, H, W
        self.max_value = 1.0
        self.mean: float | list[Any] = 0.0  # a float, or a (C, H, W) nested list for per_pixel
        self.std: float | list[Any] = 1.0
        self.base_dir: Path | None = None

    def _load(self, value: Any) -> np.ndarray:
        if isinstance(value, (bytes, bytearray)):  # file content (kiln serve never passes a path)
            return self._load_file(io.BytesIO(value))
        if isinstance(value, (str, Path)):
            return self._load_file(Path(value))
        array = np.asarray(value, dtype="float32")
        if array.ndim == 1:
            side = int(round(array.size**0.5))
            if side * side != array.size:
                raise KilnError(f"image feature '{self.name}': a flat array of {array.size} values is not square")
            array = array.reshape(side, side)
        if array.ndim == 2:
            array = array[None]
        elif array.ndim == 3 and array.shape[-1] in (1, 3, 4) and array.shape[0] not in (1, 3, 4):
            array = array.transpose(2, 0, 1)
        return array

    def _load_file(self, path: Path | io.BytesIO) -> np.ndarray:
        from PIL import Image

        if isinstance(path, Path) and not path.is_absolute() and self.base_dir is not None and not path.exists():
            path = self.base_dir / path
        try:
            with Image.open(path) as img:
                img = img.convert("L" if self.config.channels == 1 else "RGB")
                if self.config.height and self.config.width:
                    img = img.resize((self.config.width, self.config.height))
                array = np.asarray(img, dtype="float32")
        except (OSError, ValueError) as exc:
            where = "content" if isinstance(path, io.BytesIO) else str(path)
            raise KilnError(f"image feature '{self.name}': cannot read image {where}: {str(exc).split(' <_io.')[0]}") from None
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def _stack(self, series: pd.Series) -> np.ndarray:
        arrays = [self._load(v) for v in series]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise KilnError(f"image feature '{self.name}' has images of different shapes {sorted(shapes)[:3]}; set height and width")
        return np.stack(arrays) if arrays else np.zeros((0, *self.shape), dtype="float32")

    def fit(self, series: pd.Series) -> None:
        images = self._stack(series)
        self.shape = list(images.shape[1:])
        self.max_value = float(images.max()) or 1.0
        scaled = images / self.max_value
        mode = self.config.normalization
        if mode == "per_pixel":
            std = scaled.std(axis=0)
            self.mean = scaled.mean(axis=0).tolist()
            self.std = np.where(std > 1e-6, std, 1.0).tolist()
        elif mode == "global":
            self.mean, self.std = float(scaled.mean()), float(scaled.std()) or 1.0
        else:
            self.mean, self.std = 0.0, 1.0
        self.fitted = True

    def transform(self, series: pd.Series) -> torch.Tensor:
        images = self._stack(series)
        if len(images) and list(images.shape[1:]) != self.shape:
            raise KilnError(f"image feature '{self.name}': images of shape {list(images.shape[1:])}, model expects {self.shape}")
        mean = np.asarray(self.mean, dtype="float32")
        std = np.asarray(self.std, dtype="float32")
        return torch.from_numpy(((images / self.max_value - mean) / std).astype("float32"))

    def state(self) -> dict[str, Any]:
        return {"shape": self.shape, "max_value": self.max_value, "mean": self.mean, "std": self.std}

    def load_state(self, state: dict[str, Any]) -> None:
        self.shape = list(state["shape"])
        self.max_value, self.mean, self.std = state["max_value"], state["mean"], state["std"]
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        return {"shape": self.shape, "augmentation": self.config.augmentation.model_dump()}
