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


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def load_config(source: Any) -> "RunConfig":  # noqa: F821
    """Build a validated RunConfig from a path, a dict or a RunConfig."""
    from kiln.config.schema import RunConfig

    if isinstance(source, RunConfig):
        return source
    raw = read_yaml(source) if isinstance(source, (str, Path)) else dict(source)
    if "task" in raw:  # `task: language_modeling` / `pretraining` configs have their own schemas, see load_any_config
        tasks = ("language_modeling", "pretraining")
        if raw["task"] not in tasks:
            raise KilnError(f"config error at task: '{raw['task']}' is not allowed{did_you_mean(raw['task'], tasks)}; "
                            f"valid: {', '.join(tasks)} (leave task out for a supervised model)")
        raise KilnError(f"config error: this is a '{raw['task']}' task config; only `kiln train` / kiln.train / load_any_config accept it")
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        where = explain(exc, raw)
        raise KilnError(("config error: " if where.startswith(":") else "config error at ") + where.lstrip(": ")) from None
    if not _DEVICE.match(config.trainer.device):
        raise KilnError(f"config error at trainer.device: '{config.trainer.device}' is not a device; valid: auto, cpu, cuda, cuda:N, mps")
    for field in ("train", "validation", "test"):
        value = getattr(config.data, field)
        if value and not value.startswith("sklearn:"):
            setattr(config.data, field, expand_path(value, f"data.{field}"))
    return config


def validate(schema: type[BaseModel], source: Any) -> Any:
    """Validate a path or dict against a pydantic schema; the first error becomes one KilnError line."""
    if isinstance(source, schema):
        return source
    raw = read_yaml(source) if isinstance(source, (str, Path)) else dict(source)
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        where = explain(exc, raw, schema)
        raise KilnError(("config error: " if where.startswith(":") else "config error at ") + where.lstrip(": ")) from None


def load_any_config(source: Any) -> Any:
    """A RunConfig, or an LMConfig (kiln.lm) when the config has `task: language_modeling`."""
    from kiln.lm.config import load_lm_config
    from kiln.pretrain.config import load_pretrain_config

    task = config_task(source)
    if task == "pretraining":
        return load_pretrain_config(source)
    return load_lm_config(source) if task == "language_modeling" else load_config(source)


def config_task(config: Any) -> str | None:
    """The `task:` of a config given as a path, dict or config object (None for supervised runs)."""
    if isinstance(config, dict):
        return config.get("task")
    if isinstance(config, (str, Path)):
        return read_yaml(config).get("task") if Path(config).is_file() else None
    return getattr(config, "task", None)


def explain(exc: ValidationError, raw: dict[str, Any], schema: Any = None) -> str:
    """Turn pydantic's first error into `field.path: what is wrong; valid: ...`.

    Root-level errors (cross-field checks) come back as `: message`. `schema` is the validated
    model class (RunConfig by default; e.g. kiln.lm.config.LMConfig), used to suggest valid keys.
    """
    errors = exc.errors()
    err = errors[0]
    loc = _clean_loc(list(err["loc"]), raw)
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    where = _path(loc)
    if kind == "union_tag_invalid":
        options = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        what = "feature type" if loc and loc[0] in ("input_features", "output_features") else "model type" if loc[:1] == ["model"] else "type"
        return f"{where}.type: unknown {what} '{ctx.get('tag')}'{did_you_mean(ctx.get('tag'), options)}; valid: {', '.join(options)}"
    if kind == "union_tag_not_found":
        options = ", ".join((MODELS if loc[:1] == ["model"] else FEATURES).names())
        return f"{where}: missing 'type'; valid: {options}"
    branches = [e for e in errors if _clean_loc(list(e["loc"]), raw) == loc]
    if len(branches) > 1 and len(err["loc"]) > len(loc):  # every member of a union (e.g. int | 'full') failed
        expected = " or ".join(dict.fromkeys(_expected(e) for e in branches))
        return f"{where}: {value!r} is not allowed; expected {expected}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{where}: '{value}' is not allowed{did_you_mean(value, options)}; valid: {', '.join(options)}"
    if kind == "extra_forbidden":
        valid = _fields_at(loc[:-1], raw, schema)
        hint = did_you_mean(loc[-1], valid) if valid else ""
        return f"{where}: unknown key '{loc[-1]}'{hint}" + (f"; valid: {', '.join(valid)}" if valid else "")
    if kind == "missing":
        return f"{where}: required field is missing"
    message = err["msg"].removeprefix("Value error, ").replace("Input should be", "should be").replace("List should", "should")
    message = re.sub(r" or instance of \w+| after validation", "", message)
    prefix = "" if not loc else where
    return f"{prefix}: {message}" + (f" (got {value!r})" if kind != "value_error" and _short(value) else "")


def _expected(err: Any) -> str:
    """What one member of a union wanted, e.g. `an integer` or `'full'`."""
    if err["type"] == "literal_error":
        return str((err.get("ctx") or {}).get("expected", ""))
    text = err["msg"].split(",")[0].removeprefix("Input should be ").removeprefix("a valid ")
    return {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true/false"}.get(text, text)


_UNKNOWN = object()


def _clean_loc(loc: list[Any], raw: Any) -> list[Any]:
    """Drop the union-member tags pydantic adds to a location (`numeric`, `mlp`, `int`, `literal['full']`)."""
    out: list[Any] = []
    node: Any = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and last:
            pass  # a missing field
        elif (out and isinstance(out[-1], int) and part in FEATURES) or (out == ["model"] and part in MODELS):
            continue  # the feature or model type that pydantic picked
        elif node is not _UNKNOWN and not isinstance(node, (dict, list)):
            continue  # a scalar value: what follows names a union member (int, literal[...])
        else:
            node = _UNKNOWN
        out.append(part)
    return out


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) < 60


def _path(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "<root>"


def _fields_at(loc: list[Any], raw: Any, schema: Any = None) -> list[str]:
    """Valid keys of the config section at `loc` (used to suggest a fix for an unknown key)."""
    from kiln.config.schema import RunConfig

    annotation: Any = schema or RunConfig
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        cls = _section_class(annotation, node)
        field = cls.model_fields.get(part) if cls is not None else None
        if field is None:
            return []
        annotation = field.annotation
        node = node.get(part) if isinstance(node, dict) else None
    cls = _section_class(annotation, node)
    return sorted(cls.model_fields) if cls is not None else []


def _section_class(annotation: Any, node: Any) -> Any:
    """The pydantic class behind an annotation; for feature/model unions, pick by the node's type."""
    from typing import get_args

    classes: list[Any] = []
    pending = [annotation]
    while pending:
        arg = pending.pop()
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            classes.append(arg)
        else:
            pending += list(get_args(arg))
    if isinstance(node, dict) and "type" in node:
        for registry in (FEATURES, MODELS):
            if node["type"] in registry:
                match = registry.get(node["type"]).Config
                if match in classes:
                    return match
    return classes[0] if len(classes) == 1 else None


def apply_overrides(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` assignments (values parsed as YAML) to a raw config dict."""
    out = dict(raw)
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise KilnError(f"--set expects KEY=VALUE with a dotted key (e.g. trainer.epochs=5), got '{item}'")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise KilnError(f"--set {key}: cannot parse '{text}' as a YAML value") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise KilnError(f"--set {key}: '{part}' is not a section (it is {child!r})")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return out
