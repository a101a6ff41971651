"""Read a YAML config (or dict), expand ${VARS} in paths, apply `--set` overrides and validate a
schema with one-line errors. Generic: nothing here knows which sections a task has."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kiln.config.explain import explain
from kiln.config.yaml_safe import decode_config, load_yaml_text
from kiln.config.sections import split_sections
from kiln.errors import KilnError

DEFAULT_DATA_DIR = "../shared/data"
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
S = TypeVar("S", bound=BaseModel)


def data_dir() -> str:
    """Where the shared datasets live: $KILN_DATA, else ../shared/data."""
    return os.environ.get("KILN_DATA") or DEFAULT_DATA_DIR


def expand_path(value: str, field: str = "path") -> str:
    """Expand ${VAR} / $VAR (KILN_DATA defaults to ../shared/data) and ~ in a path."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name == "KILN_DATA":
            return data_dir()
        if name not in os.environ:
            raise KilnError(f"{field}: environment variable ${name} is not set (in '{value}')")
        return os.environ[name]

    return os.path.expanduser(_VAR.sub(sub, value))


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; a missing file or malformed YAML is one KilnError line."""
    path = Path(path)
    if not path.is_file():
        raise KilnError(f"config file not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KilnError(f"cannot read config {path}: {exc.strerror or exc}") from None
    data = load_yaml_text(decode_config(raw, f"config {path}"), str(path))
    if not isinstance(data, dict):
        raise KilnError(f"config {path} must be a YAML mapping of sections (data, model, trainer, ...)")
    return data


def raw_config(source: Any) -> dict[str, Any]:
    """A config given as a path or a mapping, as a plain dict."""
    if isinstance(source, (str, Path)):
        return read_yaml(source)
    if isinstance(source, BaseModel):
        return source.model_dump(mode="json")
    if not isinstance(source, dict):
        raise KilnError(f"a config is a YAML path or a mapping, not {type(source).__name__}")
    return dict(source)


def validate(schema: type[S], source: Any) -> S:
    """Validate a path or dict against a pydantic schema; the first error becomes one KilnError line."""
    if isinstance(source, schema):
        return source
    raw, _ = split_sections(raw_config(source))  # sections another package owns (tune:) are checked there
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        where = explain(exc, raw, schema)
        raise KilnError(("config error: " if where.startswith(":") else "config error at ") + where.lstrip(": ")) from None


def apply_overrides(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` assignments (values parsed as YAML) to a raw config dict."""
    out = dict(raw)
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise KilnError(f"--set expects KEY=VALUE with a dotted key (e.g. trainer.epochs=5), got '{item}'")
        try:
            value = load_yaml_text(text, f"--set {key}") if text.strip() else None
        except KilnError:
            raise KilnError(f"--set {key}: cannot parse '{text}' as a YAML value") from None
        out = set_path(out, key.strip(), value, "--set")
    return out


def set_path(raw: dict[str, Any], key: str, value: Any, where: str = "--set") -> dict[str, Any]:
    """A copy of `raw` with the dotted `key` set to `value` (sections on the way are copied, missing ones made)."""
    out = dict(raw)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, dict):
            raise KilnError(f"{where} {key}: '{part}' is not a section (it is {child!r})")
        node[part] = child = dict(child)
        node = child
    node[parts[-1]] = value
    return out
