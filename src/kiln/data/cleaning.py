"""Cleaning before the split: required columns, duplicates, type coercion, missing labels — all reported."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kiln.errors import KilnError, did_you_mean
from kiln.features import Feature
from kiln.features.base import is_missing

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # the API is silent unless the caller configures logging (the CLI does)


def check_columns(frame: pd.DataFrame | Sequence[str], names: Sequence[str], where: str = "data",
                  readers: Mapping[str, Sequence[str]] | None = None) -> None:
    """One line naming every column missing from a frame (or a list of column names), with a
    did-you-mean and, for a column some feature reads under another name, its features (`readers`)."""
    columns = [str(c) for c in (frame.columns if isinstance(frame, pd.DataFrame) else frame)]
    missing = [n for n in dict.fromkeys(names) if n not in columns]
    if missing:
        hints = []
        for name in missing:
            names_of = list((readers or {}).get(name, ()))
            if names_of and names_of != [name]:
                quoted = ", ".join(f"'{n}'" for n in names_of)
                hints.append(f"read by feature{'s' if len(names_of) > 1 else ''} {quoted}")
            if did_you_mean(name, columns):
                hints.append(did_you_mean(name, columns).strip(" ()"))
        hint = f" ({'; '.join(hints)})" if hints else ""
        cols = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
        raise KilnError(f"column(s) {missing} not found in {where}{hint}; it has: {cols}")


def check_feature_columns(frame: pd.DataFrame, features: Sequence[Feature], where: str = "data") -> None:
    """Every feature's source column is in the frame."""
    readers: dict[str, list[str]] = {}
    for feature in features:
        readers.setdefault(feature.column, []).append(feature.name)
    check_columns(frame, list(readers), where, readers)


def source_columns(features: Sequence[Feature]) -> list[str]:
    """The columns the features read, each once, in feature order."""
    return list(dict.fromkeys(f.column for f in features))


def clean_features(frame: pd.DataFrame, features: Sequence[Feature]) -> dict[str, tuple[pd.Series, dict[str, int]]]:
    """Each feature's cleaned values and change counts, by feature name. A column is overwritten with its
    cleaned values when one feature reads it (or all its readers clean it alike); otherwise it keeps the
    raw values, which `Preprocessor.fit`/`transform` clean again per feature."""
    cleaned = {f.name: f.clean(frame[f.column]) for f in features}
    for column in source_columns(features):
        values = [cleaned[f.name][0] for f in features if f.column == column]
        if all(v.equals(values[0]) for v in values[1:]):
            frame[column] = values[0]
    return cleaned


def check_scalar_cells(frame: pd.DataFrame, features: Sequence[Feature], where: str = "data") -> None:
    """A cell holding an object or a list (nested JSON) where one value belongs is one line naming it."""
    for feature in features:
        column = frame[feature.column]
        if column.dtype != object:
            continue
        nested = column.map(lambda v: isinstance(v, (dict, list, tuple, set, np.ndarray)))
        if nested.any():
            row = nested.index[int(np.argmax(nested.to_numpy()))]
            kind = type(column[row]).__name__
            raise KilnError(f"column '{feature.column}' in {where} holds a nested value ({kind}) at row {row}; "
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
    """Return the cleaned frame (the source columns the features read, plus the `keep` columns as they
    are, e.g. a split or group column) and a report of every row or value changed, by feature name."""
    features = [*inputs, *outputs]
    columns = source_columns(features)
    extra = [c for c in dict.fromkeys(keep) if c not in columns]
    check_feature_columns(frame, features, where)
    check_columns(frame, extra, where)
    report: dict[str, Any] = {"rows_loaded": len(frame)}
    if frame.empty:
        raise KilnError(f"{where} is empty (0 rows)")
    frame = frame[columns + extra].copy()
    check_scalar_cells(frame, [f for f in features if f.type not in ("image", "audio")], where)
    if drop_duplicates:
        dupes = _hashable(frame[columns]).duplicated().to_numpy()
        report["duplicates_dropped"] = int(dupes.sum())
        frame = frame.loc[~dupes]
    coerced: dict[str, int] = {}
    missing: dict[str, np.ndarray] = {}
    for feature, (values, changes) in zip(features, clean_features(frame, features).values()):
        if changes.get("coerced_non_numeric"):
            coerced[feature.name] = changes["coerced_non_numeric"]
        missing[feature.name] = is_missing(values).to_numpy()
        if missing[feature.name].all():  # dropped duplicates repeat kept rows: no loaded value is usable
            what = "missing or non-numeric" if feature.name in coerced else "missing"
            read = f" (read by feature '{feature.name}')" if feature.column != feature.name else ""
            raise KilnError(f"column '{feature.column}'{read} in {where} is empty: all {report['rows_loaded']} values are {what}")
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
