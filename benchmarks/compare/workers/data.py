"""Reading the prepared split in a peer's interpreter (numpy, pandas, scikit-learn), and scoring.

Every peer scores its test predictions here, so the metric is computed one way for all of them:
accuracy, plus F1 / precision / recall of the positive class for binary tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")


def frames(work: Path) -> dict[str, pd.DataFrame]:
    return {s: pd.read_csv(work / f"{s}.csv", keep_default_na=True) for s in SPLITS}


def digits(work: Path, scaling: str = "standard") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(X, y) per split; `standard`: per-pixel z-score fitted on train (kiln's `per_pixel`), `max`: x / 16."""
    raw = np.load(work / "digits.npz")
    out = {s: (raw[f"X_{s}"].astype("float32"), raw[f"y_{s}"].astype("int64")) for s in SPLITS}
    if scaling == "standard":
        mean, std = out["train"][0].mean(0), out["train"][0].std(0)
        std[std == 0] = 1.0
        out = {s: ((x - mean) / std, y) for s, (x, y) in out.items()}
    else:
        out = {s: (x / 16.0, y) for s, (x, y) in out.items()}
    return out


def labels(meta: dict[str, Any], parts: dict[str, pd.DataFrame]) -> tuple[dict[str, np.ndarray], list[Any]]:
    """Integer labels per split and the class list (binary: [negative, positive])."""
    col = meta["label"]
    values = sorted({str(v) for v in parts["train"][col]})
    if meta.get("positive") is not None:
        positive = str(meta["positive"])
        values = [v for v in values if v != positive] + [positive]
    elif meta["label_type"] == "binary" and set(values) == {"0", "1"}:
        values = ["0", "1"]
    index = {v: i for i, v in enumerate(values)}
    return {s: parts[s][col].astype(str).map(index).fillna(0).to_numpy("int64") for s in SPLITS}, values


def text_column(meta: dict[str, Any]) -> str:
    return next(name for name, kind in meta["inputs"].items() if kind == "text")


def tabular(meta: dict[str, Any], parts: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """Dense features: numbers median-imputed and standardised, categories one-hot, text a binary bag of
    words (tokens seen at least twice). Fitted on the training split."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = []
    for name, kind in meta["inputs"].items():
        if kind == "numeric":
            steps.append((name, make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), [name]))
        elif kind in ("category", "binary"):
            steps.append((name, make_pipeline(SimpleImputer(strategy="constant", fill_value="<unk>"),
                                              OneHotEncoder(handle_unknown="ignore")), [name]))
        elif kind == "text":
            steps.append((name, CountVectorizer(min_df=2, binary=True, max_features=2000), name))
    prepared = {s: _as_strings(meta, parts[s]) for s in SPLITS}
    ct = ColumnTransformer(steps, sparse_threshold=0.0).fit(prepared["train"])
    return {s: ct.transform(prepared[s]).astype("float32") for s in SPLITS}


def _as_strings(meta: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for name, kind in meta["inputs"].items():
        if kind in ("category", "binary"):
            frame[name] = frame[name].map(lambda v: "<unk>" if pd.isna(v) else str(v)).astype(object)
        elif kind == "text":
            frame[name] = frame[name].fillna("").astype(str)
    return frame


def score(y_true: np.ndarray, y_pred: np.ndarray, binary: bool) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    if binary:
        out.update(f1=float(f1_score(y_true, y_pred, zero_division=0)),
                   precision=float(precision_score(y_true, y_pred, zero_division=0)),
                   recall=float(recall_score(y_true, y_pred, zero_division=0)))
    return out
