"""Shared output logic for features with discrete classes (binary, category)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from kiln.errors import KilnError


def label_strings(series: pd.Series) -> pd.Series:
    """Canonical string form of labels, so 1, 1.0 and "1" are the same class."""
    def canon(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    return series.map(canon, na_action="ignore")


def encode_labels(series: pd.Series, classes: list[str], name: str) -> torch.Tensor:
    index = {c: i for i, c in enumerate(classes)}
    labels = label_strings(series)
    unknown = sorted(set(labels.dropna()) - set(index))
    if unknown:
        raise KilnError(f"output '{name}' has labels not seen in training: {unknown[:5]}; known: {classes[:10]}")
    return torch.tensor(labels.map(index).to_numpy(dtype="int64"))


def decode_classes(name: str, proba: np.ndarray, classes: list[str]) -> dict[str, np.ndarray]:
    columns = {f"{name}_prediction": np.asarray(classes, dtype=object)[proba.argmax(axis=1)]}
    for i, cls in enumerate(classes):
        columns[f"{name}_probability_{cls}"] = proba[:, i]
    return columns


def check_classes(classes: list[str], name: str, where: str = "the training data") -> None:
    if len(classes) < 2:
        raise KilnError(f"output '{name}' has a single class {classes} in {where}; a classifier needs at least two")


def add_counts(counts: dict[str, int], values: pd.Series) -> dict[str, int]:
    """Running value counts over chunks (streaming fits), in first-seen order."""
    for value, n in values.value_counts(sort=False).items():
        counts[value] = counts.get(value, 0) + int(n)
    return counts
