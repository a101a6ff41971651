"""Cleaning before the split: required columns, duplicates, type coercion, missing labels — all reported."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kiln.errors import KilnError
from kiln.features import Feature
from kiln.features.base import is_missing

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # the API is silent unless the caller configures logging (the CLI does)


def check_columns(frame: pd.DataFrame, names: Sequence[str], where: str = "data") -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        cols = ", ".join(map(str, frame.columns[:30])) + (" ..." if len(frame.columns) > 30 else "")
        raise KilnError(f"column(s) {missing} not found in {where}; it has: {cols}")


def check_scalar_cells(frame: pd.DataFrame, features: Sequence[Feature], where: str = "data") -> None:
    """A cell holding an object or a list (nested JSON) where one value belongs is one line naming it."""
    for feature in features:
        column = frame[feature.name]
        if column.dtype != object:
            continue
        nested = column.map(lambda v: isinstance(v, (dict, list, tuple, set, np.ndarray)))
        if nested.any():
            row = nested.index[int(np.argmax(nested.to_numpy()))]
            kind = type(column[row]).__name__
            raise KilnError(f"column '{feature.name}' in {where} holds a nested value ({kind}) at row {row}; "
                            f"a {feature.type} feature takes one scalar value per cell")


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """Array and list cells (images) become bytes so rows can be compared."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object and len(out) and isinstance(out[col].iloc[0], (np.ndarray, list)):
            out[col] = out[col].map(lambda a: np.asarray(a).tobytes() if isinstance(a, (np.ndarray, list)) else a)
    return out


def clean_frame(
    frame: pd.DataFrame,
    inputs: Sequence[Feature],
    outputs: Sequence[Feature],
    drop_duplicates: bool,
    where: str = "data",
    keep: Sequence[str] = (),
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return the cleaned frame (used columns, plus the `keep` columns as they are, e.g. a split or group
    column) and a report of every row or value changed."""
    features = [*inputs, *outputs]
    names = [f.name for f in features]
    extra = [c for c in dict.fromkeys(keep) if c not in names]
    check_columns(frame, names + extra, where)
    report: dict[str, Any] = {"rows_loaded": len(frame)}
    if frame.empty:
        raise KilnError(f"{where} is empty (0 rows)")
    frame = frame[names + extra].copy()
    check_scalar_cells(frame, [f for f in features if f.type not in ("image", "audio")], where)
    if drop_duplicates:
        dupes = _hashable(frame[names]).duplicated().to_numpy()
        report["duplicates_dropped"] = int(dupes.sum())
        frame = frame.loc[~dupes]
    coerced: dict[str, int] = {}
    missing: dict[str, np.ndarray] = {}
    for feature in features:
        frame[feature.name], changes = feature.clean(frame[feature.name])
        if changes.get("coerced_non_numeric"):
            coerced[feature.name] = changes["coerced_non_numeric"]
        missing[feature.name] = is_missing(frame[feature.name]).to_numpy()
        if missing[feature.name].all():  # dropped duplicates repeat kept rows: no loaded value is usable
            what = "missing or non-numeric" if feature.name in coerced else "missing"
            raise KilnError(f"column '{feature.name}' in {where} is empty: all {report['rows_loaded']} values are {what}")
    if coerced:
        report["coerced_non_numeric"] = coerced
        counts = ", ".join(f"'{name}' ({n})" for name, n in coerced.items())
        log.warning("%s: non-numeric values in numeric column(s) were treated as missing: %s", where, counts)
    report["missing_values"] = {f.name: int(missing[f.name].sum()) for f in inputs if missing[f.name].any()}
    no_label = np.zeros(len(frame), dtype=bool)
    for feature in outputs:
        no_label |= missing[feature.name]
    if no_label.any():
        report["rows_missing_label_dropped"] = int(no_label.sum())
        frame = frame.loc[~no_label]
    if frame.empty:
        raise KilnError(f"{where} has no usable rows after cleaning: {report}")
    report["rows_used"] = len(frame)
    return frame.reset_index(drop=True), report
