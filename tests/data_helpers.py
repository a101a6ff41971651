"""Small real-data samples shared by tests (tests/ is on sys.path via conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def sms_sample(data_dir: Path, path: Path) -> pd.DataFrame:
    """500 real SMS spam rows (120 spam, 380 ham, shuffled), written to `path` as CSV and returned."""
    table = pd.read_csv(data_dir / "sms_spam" / "sms_spam.tsv", sep="\t")
    spam, ham = table[table.label == "spam"], table[table.label == "ham"]
    frame = pd.concat([spam.head(120), ham.head(380)]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.to_csv(path, index=False)
    return frame
