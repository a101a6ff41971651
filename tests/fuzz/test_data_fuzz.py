"""Property: a trained model's predict / evaluate, and training itself, on a mutated table (hostile
cells, missing or renamed columns, nested JSON, other encodings and file types) succeed or raise ONE
KilnError line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _oneline import ok_or_one_line
from _tables import clean_frame, small_config
from hypothesis import given, settings
from hypothesis import strategies as st

import kiln

COLUMNS = ["x", "color", "flag", "t", "y"]
CELLS = st.one_of(
    st.sampled_from([None, float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 2**70, 0, -1, True, "", " ", "yes", "no",
                     "red", "\x00", "é", "1e999", "NaN", "null", "[1, 2]", "{\"a\": 1}", "a,b", "\"", "\n"]),
    st.integers(min_value=-(2**64), max_value=2**64), st.floats(), st.text(max_size=30),
)
NESTED = st.one_of(st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@pytest.fixture(scope="module")
def trained(saved):
    return kiln.load(saved["tab"])


@st.composite
def mutated_table(draw: st.DrawFn) -> tuple[list[dict], str, str]:
    frame = clean_frame(draw(st.integers(min_value=1, max_value=40)), seed=draw(st.integers(0, 5)))
    records = frame.to_dict("records")
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        row, column = draw(st.integers(0, len(records) - 1)), draw(st.sampled_from(COLUMNS))
        records[row][column] = draw(NESTED) if draw(st.integers(0, 9)) == 0 else draw(CELLS)
    op = draw(st.sampled_from(["none", "none", "drop", "rename", "empty", "extra"]))
    column = draw(st.sampled_from(COLUMNS))
    if op == "drop":
        records = [{k: v for k, v in r.items() if k != column} for r in records]
    elif op == "rename":
        records = [{(k + "_" if k == column else k): v for k, v in r.items()} for r in records]
    elif op == "empty":
        records = []
    elif op == "extra":
        records = [{**r, draw(st.text(max_size=5)): draw(CELLS)} for r in records]
    return records, draw(st.sampled_from(["csv", "tsv", "jsonl", "parquet"])), draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]))


def write(records: list[dict], kind: str, encoding: str, folder) -> str | None:
    """The table as a file of `kind`; None when that format cannot hold it (e.g. mixed types in parquet)."""
    path = folder / f"data.{kind}"
    frame = pd.DataFrame(records)
    try:
        if kind == "jsonl":
            text = "".join(json.dumps(r, default=str) + "\n" for r in records)
            path.write_bytes(text.encode(encoding, "replace"))
        elif kind == "parquet":
            frame.to_parquet(path)
        else:
            text = frame.to_csv(index=False, sep="," if kind == "csv" else "\t")
            path.write_bytes(text.encode(encoding, "replace"))
    except (ValueError, TypeError, OverflowError, ImportError, UnicodeError, Exception):  # noqa: BLE001 - unrepresentable: skip
        return None
    return str(path)


@given(table=mutated_table())
def test_predict_and_evaluate_on_mutated_tables(trained, tmp_path_factory, table, tried):
    records, kind, encoding = table
    path = write(records, kind, encoding, tmp_path_factory.mktemp("t"))
    if path is None:
        return
    tried(2)
    ok_or_one_line(lambda: trained.predict(path))
    ok_or_one_line(lambda: trained.evaluate(path))


@settings(max_examples=max(3, settings().max_examples // 5))
@given(table=mutated_table())
def test_training_on_mutated_tables(tmp_path_factory, table, tried):
    records, kind, encoding = table
    folder = tmp_path_factory.mktemp("t")
    path = write(records, kind, encoding, folder)
    if path is None:
        return
    tried()
    ok_or_one_line(lambda: kiln.train(small_config(path), output=folder / "run"))


@given(rows=st.lists(st.dictionaries(st.sampled_from(COLUMNS + ["z"]), st.one_of(CELLS, NESTED), max_size=5), max_size=5))
def test_predict_on_python_rows(trained, rows, tried):
    tried()
    ok_or_one_line(lambda: trained.predict(rows))
