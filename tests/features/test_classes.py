"""label_strings: the canonical class names, computed once per distinct value for numeric, boolean and
all-string columns, equal the value-by-value form for any column (mixed ones included)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.features._classes import _canon, label_strings

VALUES = st.one_of(st.none(), st.just(np.nan), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e20, float("inf")]),
                   st.text(st.sampled_from(list("ab 1.\t\x1c")), max_size=4))


def one_by_one(series: pd.Series) -> pd.Series:
    return series.map(_canon, na_action="ignore")


def assert_same(mine: pd.Series, expected: pd.Series) -> None:
    assert mine.dtype == expected.dtype and mine.index.equals(expected.index) and mine.name == expected.name
    assert mine.isna().tolist() == expected.isna().tolist()
    assert mine.dropna().tolist() == expected.dropna().tolist()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # pandas casting values a dtype cannot hold
@settings(max_examples=200, deadline=None)
@given(values=st.lists(VALUES, max_size=12), dtype=st.sampled_from([None, "object", "str", "float64", "Int64", "boolean"]))
def test_distinct_values_canonicalised_once_equal_each_value(values: list, dtype: str | None) -> None:
    try:
        series = pd.Series(values, dtype=dtype, index=range(10, 10 + len(values)), name="label")
    except (TypeError, ValueError, OverflowError):
        return  # values this dtype cannot hold
    assert_same(label_strings(series), one_by_one(series))


@pytest.mark.parametrize("series", [pd.Series([0, 1, 1]), pd.Series([1.0, 2.5, np.nan], dtype="float32"), pd.Series([True, False]),
                                    pd.Series([], dtype="int64"), pd.Series([np.nan, np.nan]), pd.Series(["a", "b"], dtype="category"),
                                    pd.Series([1, 1.0, True, "1", None], dtype=object)])
def test_label_strings_of_typical_columns(series: pd.Series) -> None:
    assert_same(label_strings(series), one_by_one(series))


def test_encode_labels_maps_classes_and_names_unknown_ones() -> None:
    from kiln.errors import KilnError
    from kiln.features._classes import encode_labels

    assert encode_labels(pd.Series([1, 0, 1.0]), ["0", "1"], "y").tolist() == [1, 0, 1]
    assert encode_labels(pd.Series(["b ", "a"]).astype("str"), ["a", "b"], "y").tolist() == [1, 0]
    with pytest.raises(KilnError, match=r"labels not seen in training: \['c'\]"):
        encode_labels(pd.Series(["a", "c", "c"]), ["a", "b"], "y")
