"""Reading a TSV: quotes are text, stray \r before tabs and line ends are stripped, and a column becomes
numbers only when every present cell is one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kiln.data.loading import read_table


def test_tsv_strips_carriage_returns_and_converts_only_all_number_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b'text\r\tscore\tcode\tmixed\tnone\n'
                     b'"a good" film\r\t1\r\t7\t1\t\n'
                     b'3 stars\t2.5\t\t2 x\t\n'
                     b'nan\t\t9\tx\t\n')
    frame = read_table(path)
    assert list(frame.columns) == ["text", "score", "code", "mixed", "none"]
    assert frame["text"].iloc[:2].tolist() == ['"a good" film', "3 stars"] and pd.isna(frame["text"].iloc[2])
    assert frame["score"].dtype == np.float64 and frame["score"].iloc[:2].tolist() == [1.0, 2.5] and np.isnan(frame["score"].iloc[2])
    assert frame["code"].iloc[[0, 2]].tolist() == [7.0, 9.0]
    assert not pd.api.types.is_numeric_dtype(frame["mixed"])  # "1" first, then words: stays text
    assert frame["mixed"].tolist() == ["1", "2 x", "x"]
    assert frame["none"].isna().all()
