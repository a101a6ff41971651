"""Read a YAML config (or dict), expand ${VARS} in paths, validate it, and explain errors in one line."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kiln.errors import KilnError, did_you_mean
from kiln.features import FEATURES
from kiln.models import MODELS

DEFAULT_DATA_DIR = "../shared/data"
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


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
    path = Path(path)
    if not path.is_file():
        raise KilnError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise KilnError(f"malformed YAML in {path}{where}: {problem}") from None
    if not isinstance(data, dict):
        raise KilnError(f"config {path} must be a YAML mapping with data/input_features/output_features sections")
    return data


def load_config(source: Any) -> "RunConfig":  # noqa: F821
    """Build a validated RunConfig from a path, a dict or a RunConfig."""
    from kiln.config.schema import RunConfig

    if isinstance(source, RunConfig):
        return source
    raw = read_yaml(source) if isinstance(source, (str, Path)) else dict(source)
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise KilnError("config error at " + explain(exc, raw)) from None
    for field in ("train", "validation", "test"):
        value = getattr(config.data, field)
        if value and not value.startswith("sklearn:"):
            setattr(config.data, field, expand_path(value, f"data.{field}"))
    return config


def explain(exc: ValidationError, raw: dict[str, Any]) -> str:
    """Turn pydantic's first error into `field.path: what is wrong; valid: ...`."""
    err = exc.errors()[0]
    loc = list(err["loc"])
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "union_tag_invalid":
        options = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        what = "feature type" if loc and loc[0] in ("input_features", "output_features") else "type"
        return f"{_path(loc)}.type: unknown {what} '{ctx.get('tag')}'{did_you_mean(ctx.get('tag'), options)}; valid: {', '.join(options)}"
    if kind == "union_tag_not_found":
        return f"{_path(loc)}: missing 'type'"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{_path(loc)}: '{value}' is not allowed{did_you_mean(value, options)}; valid: {', '.join(options)}"
    if kind == "extra_forbidden":
        valid = _fields_at(loc[:-1], raw)
        hint = did_you_mean(loc[-1], valid) if valid else ""
        return f"{_path(loc)}: unknown key '{loc[-1]}'{hint}" + (f"; valid: {', '.join(valid)}" if valid else "")
    if kind == "missing":
        return f"{_path(loc)}: required field is missing"
    message = err["msg"].removeprefix("Value error, ")
    return f"{_path(loc)}: {message}" + (f" (got {value!r})" if kind != "value_error" and _short(value) else "")


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) < 60


def _path(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in FEATURES or part in MODELS:
            continue  # the union member's tag pydantic adds to the location
        else:
            text += ("." if text else "") + str(part)
    return text or "<root>"


def _fields_at(loc: list[Any], raw: Any) -> list[str]:
    """Valid keys of the config section at `loc` (used to suggest a fix for an unknown key)."""
    from kiln.config.schema import RunConfig

    cls: Any = RunConfig
    node: Any = raw
    for part in loc:
        if isinstance(part, int) or part in FEATURES or part in MODELS:
            node = node[part] if isinstance(part, int) and isinstance(node, list) else node
            continue
        node = node.get(part) if isinstance(node, dict) else None
        field = cls.model_fields.get(part)
        if field is None:
            return []
        cls = _section_class(field.annotation, node)
        if cls is None:
            return []
    return sorted(cls.model_fields)


def _section_class(annotation: Any, node: Any) -> Any:
    """The pydantic class behind an annotation; for feature/model unions, pick by the node's type."""
    from typing import get_args

    candidates = [annotation, *get_args(annotation)]
    for arg in list(candidates):
        candidates += list(get_args(arg))
    classes = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    if isinstance(node, dict) and "type" in node:
        for registry in (FEATURES, MODELS):
            if node["type"] in registry:
                match = registry.get(node["type"]).Config
                if match in classes:
                    return match
    return classes[0] if len(classes) == 1 else None
