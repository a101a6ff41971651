"""Request validation (rows → DataFrame with the model's input columns) and JSON-safe outputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


class RequestError(Exception):
    """A 422: `field` names the offending part of the body, e.g. `rows[3].age`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_EXPECTED = {
    "numeric": "a number or null",
    "binary": "a string, number, boolean or null",
    "category": "a string, number, boolean or null",
    "text": "a string or null",
    "image": "a string (image path) or null",
}


def input_schema(config: Any) -> list[dict[str, str]]:
    return [{"name": f.name, "type": f.type} for f in config.input_features]


def output_schema(config: Any) -> list[dict[str, str]]:
    return [{"name": f.name, "type": f.type} for f in config.output_features]


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _ok(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "numeric":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("text", "image"):
        return isinstance(value, str)
    return isinstance(value, (str, int, float, bool))


def rows_to_frame(body: Any, features: list[dict[str, str]], max_rows: int | None = None) -> pd.DataFrame:
    """Validate `{"rows": [{col: value}, ...]}` and build the input frame (extra columns are ignored)."""
    if not isinstance(body, dict):
        raise RequestError("body", f"expected a JSON object with 'rows', got {_type_name(body)}")
    rows = body.get("rows")
    if rows is None:
        raise RequestError("rows", "missing field 'rows' (a list of row objects)")
    if not isinstance(rows, list):
        raise RequestError("rows", f"expected a list of row objects, got {_type_name(rows)}")
    if not rows:
        raise RequestError("rows", "empty: send at least one row")
    if max_rows is not None and len(rows) > max_rows:
        raise RequestError("rows", f"{len(rows)} rows is over this server's limit of {max_rows} per request")
    columns: dict[str, list[Any]] = {f["name"]: [] for f in features}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RequestError(f"rows[{i}]", f"expected an object, got {_type_name(row)}")
        for feature in features:
            name, kind = feature["name"], feature["type"]
            if name not in row:
                raise RequestError(f"rows[{i}].{name}", f"missing input column '{name}' ({kind})")
            value = row[name]
            if not _ok(kind, value):
                raise RequestError(f"rows[{i}].{name}", f"expected {_EXPECTED.get(kind, 'a scalar')} for {kind} column '{name}', got {_type_name(value)} {value!r:.60}")
            if kind == "numeric" and value is not None and not math.isfinite(float(value)):
                raise RequestError(f"rows[{i}].{name}", "expected a finite number")
            columns[name].append(value)
    frame = pd.DataFrame(columns)
    for feature in features:
        if feature["type"] == "numeric":
            frame[feature["name"]] = pd.to_numeric(frame[feature["name"]], errors="coerce").astype("float64")
    return frame


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    cols = {c: [_py(v) for v in frame[c].tolist()] for c in frame.columns}
    return [{c: cols[c][i] for c in frame.columns} for i in range(len(frame))]
