"""Request validation (rows → DataFrame with the model's input columns) and JSON-safe outputs."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np
import pandas as pd

# Feature types whose value is file content: bytes, sent base64-encoded in JSON or as a multipart file
# part, and decoded by the feature itself. The server never opens a path named in a request.
CONTENT_TYPES = {"image", "audio"}


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
    "image": "base64-encoded image content (a data: URL works too) or a multipart file part",
    "audio": "base64-encoded WAV/FLAC/OGG content (a data: URL works too) or a multipart file part",
}


def input_schema(config: Any) -> list[dict[str, str]]:
    """The columns a request row carries: each input feature's source column, once (features that
    read one column share it; its values are checked against the first of them)."""
    columns: dict[str, dict[str, str]] = {}
    for f in config.input_features:
        columns.setdefault(f.source_column, {"name": f.source_column, "type": f.type})
    return list(columns.values())


def output_schema(config: Any) -> list[dict[str, str]]:
    return [{"name": f.name, "type": f.type} for f in config.output_features]


def _type_name(value: Any) -> str:
    return {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _ok(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "numeric":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "text":
        return isinstance(value, str)
    return isinstance(value, (str, int, float, bool))


def validate_rows(body: Any, features: list[dict[str, str]], max_rows: int | None = None) -> list[dict[str, Any]]:
    """Check `{"rows": [{col: value}, ...]}` against the input schema and return the rows (plain Python,
    no pandas: this runs once per request; the frame is built once per batch by `build_frame`)."""
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
    checks = [(f["name"], f["type"]) for f in features]
    content = any(kind in CONTENT_TYPES for _, kind in checks)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RequestError(f"rows[{i}]", f"expected an object, got {_type_name(row)}")
        for name, kind in checks:
            try:
                value = row[name]
            except KeyError:
                raise RequestError(f"rows[{i}].{name}", f"missing input column '{name}' ({kind})") from None
            if content and kind in CONTENT_TYPES:
                row[name] = decode_content(value, kind, f"rows[{i}].{name}")
                continue
            if value is None:
                continue
            if not _ok(kind, value):
                raise RequestError(f"rows[{i}].{name}", f"expected {_EXPECTED.get(kind, 'a scalar')} for {kind} column '{name}', got {_type_name(value)} {value!r:.60}")
            if kind == "numeric" and not (math.isfinite(value) if isinstance(value, float) else abs(value) < 1e308):
                raise RequestError(f"rows[{i}].{name}", "expected a finite number")
    return rows


def decode_content(value: Any, kind: str, field: str) -> bytes:
    """The bytes of a content value: base64 text (plain or a `data:` URL) or bytes already decoded (a
    multipart file part). The error never depends on the text, so a path reveals nothing."""
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, str):
        text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
        try:
            data = base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise RequestError(field, f"expected {_EXPECTED[kind]}; the server does not read file paths") from None
    else:
        raise RequestError(field, f"expected {_EXPECTED[kind]}, got {_type_name(value)}")
    if not data:
        raise RequestError(field, f"empty {kind} content")
    return data


def build_frame(rows: list[dict[str, Any]], features: list[dict[str, str]]) -> pd.DataFrame:
    """The input frame for validated rows (extra keys are ignored): numeric columns float64 (null → NaN)."""
    columns: dict[str, Any] = {}
    for feature in features:
        name = feature["name"]
        values = [row[name] for row in rows]
        if feature["type"] == "numeric":
            columns[name] = np.array([math.nan if v is None else v for v in values], dtype="float64")
        else:
            columns[name] = values
    return pd.DataFrame(columns)


def rows_to_frame(body: Any, features: list[dict[str, str]], max_rows: int | None = None) -> pd.DataFrame:
    """Validate `{"rows": [{col: value}, ...]}` and build the input frame (extra columns are ignored)."""
    return build_frame(validate_rows(body, features, max_rows), features)


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-safe dict per row (numpy scalars → Python, NaN/inf → null), built column-wise."""
    cols = list(frame.columns)
    lists = []
    for c in cols:
        series = frame[c]
        values = series.tolist()  # numpy scalars become Python ones here
        if series.dtype.kind == "f":
            if not np.isfinite(series.to_numpy()).all():
                values = [v if math.isfinite(v) else None for v in values]
        elif series.dtype.kind not in "biu":
            values = [_py(v) for v in values]
        lists.append(values)
    return [dict(zip(cols, row)) for row in zip(*lists)]
