"""Shared output logic for features with discrete classes (binary, category)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from kiln.errors import KilnError


def _canon(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def label_strings(series: pd.Series) -> pd.Series:
    """Canonical string form of labels, so 1, 1.0 and "1" are the same class (missing labels stay missing).
    Numbers, booleans and all-string columns are canonicalised once per distinct value; mixed columns (where
    1 == 1.0 == True would fold distinct values together) one value at a time."""
    if not (series.dtype.kind in "biuf" or pd.api.types.is_string_dtype(series)
            and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")):
        return series.map(_canon, na_action="ignore")
    codes, distinct = pd.factorize(series)
    if not len(distinct):  # all missing: the column keeps its dtype
        return series.map(_canon, na_action="ignore")
    canonical = np.array([*map(_canon, distinct.tolist()), np.nan], dtype=object)  # code -1 (missing): the last
    return pd.Series(canonical[codes], index=series.index, name=series.name)


def encode_labels(series: pd.Series, classes: list[str], name: str) -> torch.Tensor:
    index = {c: i for i, c in enumerate(classes)}
    labels = label_strings(series)
    unknown = sorted(set(labels.dropna().unique()) - set(index))
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
