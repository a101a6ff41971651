"""Train/validation/test splits (stratified where possible) and k-fold indices."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd

from kiln.errors import KilnError


def _strata(labels: pd.Series | None, fraction: float) -> pd.Series | None:
    """Stratify only when every class can appear on both sides."""
    if labels is None:
        return None
    counts = labels.value_counts()
    return labels if len(counts) > 1 and counts.min() >= 2 and fraction * len(labels) >= len(counts) else None


def split_indices(
    n: int, fraction: float, seed: int, labels: pd.Series | None, name: str = "hold-out"
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (kept, held out) with `fraction` held out."""
    from sklearn.model_selection import train_test_split

    index = np.arange(n)
    if fraction <= 0:
        return index, index[:0]
    if n - math.ceil(fraction * n) < 1:
        raise KilnError(
            f"too few rows for a {name} split: holding out {fraction:.0%} of {n} row{'s' if n != 1 else ''} "
            f"leaves none to train on; add data, or set data.split.{name} to 0 (or give data.{name} as a file)"
        )
    keep, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=_strata(labels, fraction))
    return np.sort(keep), np.sort(held)


def three_way_split(
    frame: pd.DataFrame,
    validation: float,
    test: float,
    seed: int,
    label: str | None,
    has_test: bool = False,
    has_validation: bool = False,
) -> dict[str, pd.DataFrame]:
    """Split one frame into train/validation/test; fractions are of the whole frame."""
    labels = frame[label].astype(str) if label else None
    parts: dict[str, pd.DataFrame] = {}
    rest = frame
    if not has_test and test > 0:
        keep, held = split_indices(len(rest), test, seed, labels, "test")
        parts["test"], rest = rest.iloc[held], rest.iloc[keep]
    if not has_validation and validation > 0:
        share = validation / (1.0 - (0.0 if has_test else test))
        rest_labels = rest[label].astype(str) if label else None
        keep, held = split_indices(len(rest), share, seed + 1, rest_labels, "validation")
        parts["validation"], rest = rest.iloc[held], rest.iloc[keep]
    parts["train"] = rest
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def kfold_indices(frame: pd.DataFrame, folds: int, seed: int, label: str | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) index pairs for k-fold cross-validation, stratified when possible."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if folds > len(frame):
        raise KilnError(f"--folds {folds} is more than the {len(frame)} usable rows of the data")
    if label is not None:
        labels = frame[label].astype(str)
        if labels.value_counts().min() >= folds:
            yield from StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(frame)), labels)
            return
    yield from KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(frame)))
