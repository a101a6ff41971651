"""Train/validation/test splits (stratified where possible, or keeping each group on one side; or read from
a column) and k-fold indices (group k-fold when groups are given).

The hold-out split is kiln's own numpy code that draws exactly the rows scikit-learn's `train_test_split`
draws (same seed, same rows: tests/data/test_splitting.py checks it against scikit-learn), because importing
`sklearn.model_selection` costs ~1 s of every run's start-up; k-fold (cross-validation only) still uses it."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd

from kiln.errors import KilnError


def _strata(labels: pd.Series | None, fraction: float) -> np.ndarray | None:
    """Stratify only when every class can appear on both sides (a kept side too small for one row of
    each class, which scikit-learn refuses, is split unstratified)."""
    if labels is None:
        return None
    counts = labels.value_counts()
    kept = len(labels) - math.ceil(fraction * len(labels))
    fits = counts.min() >= 2 and fraction * len(labels) >= len(counts) and kept >= len(counts)
    return labels.to_numpy(dtype=object) if len(counts) > 1 and fits else None


def _apportion(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` rows each class gets: its floored share, then one more for the largest
    remainders, ties drawn at random (scikit-learn's `_approximate_mode`, same arithmetic, same draws)."""
    share = counts / counts.sum() * draws
    taken = np.floor(share)
    missing = int(draws - taken.sum())
    remainder = share - taken
    for value in np.sort(np.unique(remainder))[::-1] if missing > 0 else []:
        tied = np.flatnonzero(remainder == value)
        add = min(len(tied), missing)
        taken[rng.choice(tied, size=add, replace=False)] += 1
        missing -= add
        if missing == 0:
            break
    return taken.astype(int)


def _shuffle_split(n: int, n_held: int, seed: int, strata: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) unsorted, drawn as scikit-learn's ShuffleSplit / StratifiedShuffleSplit draw them."""
    rng = np.random.RandomState(seed)
    if strata is None:
        order = rng.permutation(n)
        return order[n_held:], order[:n_held]
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts)[:-1])
    kept_counts = _apportion(counts, n - n_held, rng)
    held_counts = _apportion(counts - kept_counts, n_held, rng)
    kept, held = [], []
    for rows, k, h in zip(members, kept_counts, held_counts):
        shuffled = rows[rng.permutation(len(rows))]
        kept.append(shuffled[:k])
        held.append(shuffled[k:k + h])
    return np.concatenate(kept), np.concatenate(held)


def split_indices(
    n: int, fraction: float, seed: int, labels: pd.Series | None, name: str = "hold-out", groups: pd.Series | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (kept, held out) with `fraction` held out (of the groups, when groups are given), both
    sorted; the rows scikit-learn's `train_test_split(test_size=fraction, random_state=seed, stratify=...)`
    holds out."""
    index = np.arange(n)
    if fraction <= 0:
        return index, index[:0]
    if groups is not None:
        return _group_split(groups, fraction, seed, name)
    if n - math.ceil(fraction * n) < 1:
        raise KilnError(
            f"too few rows for a {name} split: holding out {fraction:.0%} of {n} row{'s' if n != 1 else ''} "
            f"leaves none to train on; add data, or set data.split.{name} to 0 (or give data.{name} as a file)"
        )
    keep, held = _shuffle_split(n, math.ceil(fraction * n), seed, _strata(labels, fraction))
    return np.sort(keep), np.sort(held)


def _group_split(groups: pd.Series, fraction: float, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a seeded random `fraction` of the groups (at least one, leaving at least one)."""
    keys = groups.astype(str).to_numpy()
    unique = np.unique(keys)
    if len(unique) < 2:
        raise KilnError(f"a {name} split by group needs at least 2 groups; '{groups.name}' has {len(unique)}")
    count = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    held_groups = np.random.default_rng(seed).permutation(unique)[:count]
    held = np.isin(keys, held_groups)
    return np.flatnonzero(~held), np.flatnonzero(held)


def column_split(frame: pd.DataFrame, column: str, where: str = "data") -> dict[str, pd.DataFrame]:
    """Split by a column whose values are `train`, `validation` or `test` (case and spaces ignored)."""
    if column not in frame.columns:
        raise KilnError(f"data.split.column: column '{column}' not found in {where}")
    values = frame[column].astype(str).str.strip().str.lower()
    unknown = sorted(set(values) - {"train", "validation", "test"})
    if unknown:
        row = int(np.flatnonzero(~values.isin(["train", "validation", "test"]))[0])
        raise KilnError(f"data.split.column '{column}': row {frame.index[row]} has {frame[column].iloc[row]!r}; "
                        f"values must be train, validation or test (found {unknown[:5]})")
    parts = {name: frame.loc[values.eq(name).to_numpy()] for name in ("train", "validation", "test")}
    if parts["train"].empty:
        raise KilnError(f"data.split.column '{column}': no row is marked 'train'")
    return {k: v for k, v in parts.items() if not v.empty or k == "train"}


def three_way_split(
    frame: pd.DataFrame,
    validation: float,
    test: float,
    seed: int,
    label: str | None,
    has_test: bool = False,
    has_validation: bool = False,
    group: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Split one frame into train/validation/test; fractions are of the whole frame (of its groups when
    `group` names a column: then every group's rows land on one side)."""
    labels = frame[label].astype(str) if label and group is None else None
    parts: dict[str, pd.DataFrame] = {}
    rest = frame
    if not has_test and test > 0:
        keep, held = split_indices(len(rest), test, seed, labels, "test", rest[group] if group else None)
        parts["test"], rest = rest.iloc[held], rest.iloc[keep]
    if not has_validation and validation > 0:
        share = validation / (1.0 - (0.0 if has_test else test))
        rest_labels = rest[label].astype(str) if label and group is None else None
        keep, held = split_indices(len(rest), share, seed + 1, rest_labels, "validation", rest[group] if group else None)
        parts["validation"], rest = rest.iloc[held], rest.iloc[keep]
    parts["train"] = rest
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def kfold_indices(
    frame: pd.DataFrame, folds: int, seed: int, label: str | None, group: str | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) index pairs for k-fold cross-validation, stratified when possible; with `group`,
    group k-fold: each group's rows are held out together, in exactly one fold."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if group is not None:
        keys = frame[group].astype(str).to_numpy()
        unique = np.random.default_rng(seed).permutation(np.unique(keys))
        if folds > len(unique):
            raise KilnError(f"--folds {folds} is more than the {len(unique)} groups in column '{group}'")
        fold_of = {g: i % folds for i, g in enumerate(unique)}
        assigned = np.array([fold_of[k] for k in keys])
        for k in range(folds):
            yield np.flatnonzero(assigned != k), np.flatnonzero(assigned == k)
        return
    if folds > len(frame):
        raise KilnError(f"--folds {folds} is more than the {len(frame)} usable rows of the data")
    if label is not None:
        labels = frame[label].astype(str)
        if labels.value_counts().min() >= folds:
            yield from StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(frame)), labels)
            return
    yield from KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(frame)))
