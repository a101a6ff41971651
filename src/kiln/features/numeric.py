"""Numeric features: coercion, imputation, outlier clipping, zscore/minmax scaling, noise augmentation."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field

from kiln.errors import KilnError
from kiln.features import FEATURES
from kiln.features.base import Feature, FeatureConfig

LARGEST = 1e30  # larger magnitudes overflow float32 once scaled (z-score squares them)


class NumericConfig(FeatureConfig):
    type: Literal["numeric"]
    normalization: Literal["zscore", "minmax", "none"] = "zscore"
    noise: float = Field(0.0, ge=0.0, le=1e6)  # std of Gaussian noise added in training (inputs, in normalised units)
    loss: Literal["mse", "mae", "huber"] = "mse"  # outputs only


@FEATURES.register("numeric")
class NumericFeature(Feature):
    type = "numeric"
    Config = NumericConfig
    can_be_output = True
    output_dim = 1

    def __init__(self, config: NumericConfig, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        self.fill = 0.0
        self.low: float | None = None
        self.high: float | None = None
        self.shift = 0.0
        self.scale = 1.0

    def clean(self, series: pd.Series) -> tuple[pd.Series, dict[str, int]]:
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            return self._finite(series.astype("float64")), {}
        text = series.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = int((numbers.isna() & text.notna() & text.ne("")).sum())
        return self._finite(numbers.astype("float64")), ({"coerced_non_numeric": bad} if bad else {})

    def _finite(self, values: pd.Series) -> pd.Series:
        """Refuse inf, -inf and magnitudes beyond float32 scaling: name the column, count the rows."""
        array = values.to_numpy()
        bad = np.isinf(array) | (np.abs(np.nan_to_num(array)) > LARGEST)
        if bad.any():
            first = values.index[int(np.argmax(bad))]
            raise KilnError(f"column '{self.name}' holds non-finite or overflowing values (inf, or beyond ±{LARGEST:g}) in "
                            f"{int(bad.sum())} row(s), first at row {first}; replace or drop them")
        return values

    def fit(self, series: pd.Series) -> None:
        values = series.astype("float64")
        strategy = getattr(getattr(self.preprocessing, "missing", None), "numeric", "median")
        self.fill = float({"median": values.median(), "mean": values.mean(), "zero": 0.0}[strategy])
        values = values.fillna(self.fill)
        clip = getattr(getattr(self.preprocessing, "outliers", None), "clip_quantiles", None)
        if clip:
            self.low, self.high = (float(q) for q in values.quantile(list(clip)))
            values = values.clip(self.low, self.high)
        self.shift, self.scale = self._scaler(values.to_numpy())
        self.fitted = True

    def fit_partial(self, series: pd.Series) -> None:
        if not hasattr(self, "_moments"):
            self._moments, self._sample = Moments(), Sample(SAMPLE_SIZE, seed=len(self.name))
        values = series.astype("float64").to_numpy()
        present = values[~np.isnan(values)]
        self._moments.add(present, missing=len(values) - len(present))
        if self._needs_sample():
            self._sample.add(present)

    def _needs_sample(self) -> bool:
        preprocessing = self.preprocessing
        strategy = getattr(getattr(preprocessing, "missing", None), "numeric", "median")
        return strategy == "median" or bool(getattr(getattr(preprocessing, "outliers", None), "clip_quantiles", None))

    def fit_finish(self) -> None:
        """Exact mean/std/min/max from merged moments; the median fill and clipping quantiles from a
        seeded uniform sample of SAMPLE_SIZE values (exact while the column has no more values)."""
        moments, sample = getattr(self, "_moments", Moments()), getattr(self, "_sample", Sample(SAMPLE_SIZE))
        clip = getattr(getattr(self.preprocessing, "outliers", None), "clip_quantiles", None)
        if clip or moments.count == 0:
            self.fit(pd.Series(sample.values(), dtype="float64"))  # the sample stands in for the column
        else:
            strategy = getattr(getattr(self.preprocessing, "missing", None), "numeric", "median")
            self.fill = float({"median": lambda: np.median(sample.values()), "mean": lambda: moments.mean,
                               "zero": lambda: 0.0}[strategy]())
            moments.add(np.full(moments.missing, self.fill), missing=0)
            self.shift, self.scale = self._scaler_from(moments)
            self.fitted = True
        del self._moments, self._sample

    def _scaler_from(self, m: "Moments") -> tuple[float, float]:
        mode = self.config.normalization
        if mode == "zscore":
            std = float(np.sqrt(m.m2 / m.count)) if m.count else 0.0
            return m.mean, std if std > 1e-12 else 1.0
        if mode == "minmax":
            span = m.high - m.low
            return m.low, span if span > 1e-12 else 1.0
        return 0.0, 1.0

    def _scaler(self, values: np.ndarray) -> tuple[float, float]:
        mode = self.config.normalization
        if mode == "zscore":
            std = float(values.std())
            return float(values.mean()), std if std > 1e-12 else 1.0
        if mode == "minmax":
            span = float(values.max() - values.min())
            return float(values.min()), span if span > 1e-12 else 1.0
        return 0.0, 1.0

    def _normalise(self, series: pd.Series, clip: bool) -> np.ndarray:
        # numpy, not Series.fillna/clip: same result, without pandas' per-call overhead (serving predicts small batches)
        values = series.astype("float64").to_numpy(copy=True)
        values[np.isnan(values)] = self.fill
        if clip and self.low is not None:
            np.clip(values, self.low, self.high, out=values)
        return ((values - self.shift) / self.scale).astype("float32")

    def transform(self, series: pd.Series) -> torch.Tensor:
        return torch.from_numpy(self._normalise(series, clip=True)).unsqueeze(1)

    def state(self) -> dict[str, Any]:
        return {"fill": self.fill, "low": self.low, "high": self.high, "shift": self.shift, "scale": self.scale}

    def load_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: state[k] for k in ("fill", "low", "high", "shift", "scale")})
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        return {"dim": 1, "noise": self.config.noise}

    # -- output ------------------------------------------------------------------------------
    def encode_target(self, series: pd.Series) -> torch.Tensor:
        return torch.from_numpy(self._normalise(series, clip=False))

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = logits.squeeze(-1)
        if self.config.loss == "mae":
            return F.l1_loss(pred, target)
        if self.config.loss == "huber":
            return F.huber_loss(pred, target)
        return F.mse_loss(pred, target)

    def _denormalise(self, values: torch.Tensor) -> np.ndarray:
        return values.detach().double().cpu().numpy().reshape(-1) * self.scale + self.shift

    def decode(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        return {f"{self.name}_prediction": self._denormalise(logits)}

    def metrics(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        from kiln.evaluate.metrics import regression_metrics  # scikit-learn loads only when metrics are computed

        loss = float(self.loss(logits, target))
        return regression_metrics(self._denormalise(target), self._denormalise(logits), loss=loss)

    def running_metric(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[str, torch.Tensor]:
        return "mae", (logits.squeeze(-1) - target).abs().sum() * self.scale


SAMPLE_SIZE = 1_000_000  # values kept for a streaming median / quantiles


class Moments:
    """Count, mean, sum of squared deviations, min and max, merged chunk by chunk (Chan et al.)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2, self.missing = 0, 0.0, 0.0, 0
        self.low, self.high = float("inf"), float("-inf")

    def add(self, values: np.ndarray, missing: int) -> None:
        self.missing += missing
        n = len(values)
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))


class Sample:
    """A seeded uniform sample of at most `size` values: each value gets a random key and the
    smallest keys are kept (bottom-k), so the sample does not depend on how the data was chunked."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.rng = size, np.random.default_rng(seed)
        self.kept, self.keys = np.empty(0), np.empty(0)

    def add(self, values: np.ndarray) -> None:
        self.kept = np.concatenate([self.kept, values])
        self.keys = np.concatenate([self.keys, self.rng.random(len(values))])
        if len(self.kept) > self.size:
            top = np.argpartition(self.keys, self.size)[: self.size]
            self.kept, self.keys = self.kept[top], self.keys[top]

    def values(self) -> np.ndarray:
        return self.kept
