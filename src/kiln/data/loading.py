"""Read tables by file extension, or a built-in scikit-learn dataset (`sklearn:digits`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kiln.errors import KilnError, did_you_mean
from kiln.registry import Registry

READERS: Registry[Callable[[Path], pd.DataFrame]] = Registry("file type")
BUILTIN: Registry[Callable[[], pd.DataFrame]] = Registry("built-in dataset")


@READERS.register(".csv")
def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


@READERS.register(".tsv")
def _tsv(path: Path) -> pd.DataFrame:
    """Tab-separated; quotes are text (QUOTE_NONE). Rows end at \n only: a stray \r inside a row
    (SST-2's train.tsv has one before each tab) is stripped instead of splitting the row."""
    frame = pd.read_csv(path, sep="\t", quoting=3, lineterminator="\n")
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in frame.columns:
        column = frame[col]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            strings = isinstance(column.dtype, pd.StringDtype)  # every cell a string or missing: vectorised
            column = column.str.rstrip("\r") if strings else column.map(lambda v: v.rstrip("\r") if isinstance(v, str) else v)
            frame[col] = column
            if _may_be_numeric(column):
                converted = pd.to_numeric(column, errors="coerce")
                if converted.notna().sum() == column.notna().sum():
                    frame[col] = converted
    return frame


def _may_be_numeric(column: pd.Series) -> bool:
    """False when the first present cell is no number: then the column cannot be all numbers (spares parsing
    every cell of a text column)."""
    first = column.dropna()[:1]
    return first.empty or bool(pd.to_numeric(first, errors="coerce").notna().all())


@READERS.register(".jsonl")
def _jsonl(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True)


@READERS.register(".parquet")
def _parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _sklearn_table(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets as ds

        bunch = getattr(ds, f"load_{name}")()
        frame = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
        names = getattr(bunch, "target_names", None)
        frame["target"] = np.asarray(names)[bunch.target] if names is not None and name != "diabetes" else bunch.target
        return frame

    return load


for _name in ("iris", "wine", "breast_cancer", "diabetes"):
    BUILTIN.register(_name)(_sklearn_table(_name))


@BUILTIN.register("digits")
def _digits() -> pd.DataFrame:
    """8x8 handwritten digits: an `image` column of 8x8 arrays and an integer `label`."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return pd.DataFrame({"image": list(bunch.images.astype("float32")), "label": bunch.target})


def read_table(source: str | Path) -> pd.DataFrame:
    """Load a dataset: `sklearn:<name>` or a .csv/.tsv/.jsonl/.parquet file."""
    text = str(source)
    if text.startswith("sklearn:"):
        return BUILTIN.get(text.split(":", 1)[1])()
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise KilnError(
            f"unknown file type '{suffix or path.name}' for {path}{did_you_mean(suffix, READERS)}; "
            f"valid: {', '.join(READERS.names())}, or sklearn:<{'|'.join(BUILTIN.names())}>"
        )
    if not path.is_file():
        raise KilnError(f"data file not found: {path} (current directory: {Path.cwd()})")
    try:
        frame = READERS.get(suffix)(path)
    except pd.errors.EmptyDataError:
        raise KilnError(f"data file {path} is empty (no header row, no rows)") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise KilnError(f"cannot read {path}: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for malformed files
        raise KilnError(f"cannot read {path}: {type(exc).__name__}: {_first_line(exc)}") from None
    if len(frame.columns) != len(set(map(str, frame.columns))):
        raise KilnError(f"{path} has duplicate column names")
    frame.attrs["source"] = str(path)
    return frame


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def as_frame(data: pd.DataFrame | str | Path | dict | list) -> pd.DataFrame:
    """Accept a DataFrame, a path, a dict of columns or a list of row dicts."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, Path)):
        return read_table(data)
    return pd.DataFrame(data)


def read_text(path: str | Path, encoding: str = "utf-8", field: str = "data.train") -> str:
    """A whole text file; one-line errors for a missing, empty or wrongly encoded one."""
    path = Path(path)
    if not path.is_file():
        raise KilnError(f"{field}: text file not found: {path}")
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise KilnError(f"{field}: {path} is not valid {encoding} text (byte {exc.start}); set data.encoding") from None
    except LookupError:
        raise KilnError(f"data.encoding: unknown text encoding '{encoding}'") from None
    if not text:
        raise KilnError(f"{field}: {path} is empty")
    return text
