"""Split by a column of train/validation/test values, by group (no group on two sides), group k-fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kiln.data.splitting import column_split, kfold_indices, three_way_split
from kiln.errors import KilnError


def frame(n: int = 60, groups: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(n), "y": np.arange(n) % 3, "who": [f"g{i % groups}" for i in range(n)],
                         "split": ["train", "Test ", "validation"] * (n // 3)})


def test_column_split_reads_values_and_refuses_others():
    parts = column_split(frame(), "split")
    assert {k: len(v) for k, v in parts.items()} == {"train": 20, "validation": 20, "test": 20}
    bad = frame()
    bad.loc[4, "split"] = "dev"
    with pytest.raises(KilnError, match="row 4 has 'dev'; values must be train, validation or test"):
        column_split(bad, "split")
    with pytest.raises(KilnError, match="no row is marked 'train'"):
        column_split(frame().assign(split="test"), "split")


def test_group_split_never_straddles():
    parts = three_way_split(frame(), 0.2, 0.2, 3, "y", group="who")
    seen = [set(p["who"]) for p in parts.values()]
    assert len(parts) == 3 and all(a.isdisjoint(b) for i, a in enumerate(seen) for b in seen[i + 1:])
    assert sum(len(p) for p in parts.values()) == 60
    with pytest.raises(KilnError, match="at least 2 groups"):
        three_way_split(frame(groups=1), 0.0, 0.2, 3, None, group="who")


def test_group_kfold_holds_each_group_out_once():
    data = frame()
    held_groups = []
    for train, held in kfold_indices(data, 3, 0, "y", group="who"):
        assert set(data["who"].iloc[train]).isdisjoint(data["who"].iloc[held])
        held_groups += sorted(set(data["who"].iloc[held]))
    assert sorted(held_groups) == sorted(set(data["who"]))
    with pytest.raises(KilnError, match="more than the 6 groups"):
        list(kfold_indices(data, 7, 0, "y", group="who"))
