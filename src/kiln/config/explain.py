"""Turn pydantic's first validation error into one line: `field.path: what is wrong; valid: ...`.

Generic over schemas: tagged unions (feature, model and task types) are recognised by their
`type` field, and `Section.type_labels` of the enclosing section names what they hold."""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from kiln.errors import did_you_mean

_UNKNOWN = object()


def explain(exc: ValidationError, raw: dict[str, Any], schema: type[BaseModel]) -> str:
    """Root-level errors (cross-field checks) come back as `: message`."""
    errors = exc.errors()
    err = errors[0]
    loc = _clean_loc(list(err["loc"]), raw)
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    where = _path(loc)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        options = _type_options(schema, loc, raw)
        what = _type_label(schema, loc, raw)
        if kind == "union_tag_not_found":
            return f"{where}: missing 'type'; valid: {', '.join(options)}"
        return f"{where}.type: unknown {what} '{ctx.get('tag')}'{did_you_mean(ctx.get('tag'), options)}; valid: {', '.join(options)}"
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
        elif isinstance(node, dict) and node.get("type") == part:
            continue  # the member of a tagged union that pydantic picked
        elif isinstance(node, dict) and last:
            pass  # a missing field
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


def _walk(schema: Any, loc: list[Any], raw: Any) -> tuple[Any, Any, Any]:
    """(annotation at loc, the section class holding it, the raw node at loc)."""
    annotation: Any = schema
    owner: Any = None
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if get_origin(annotation) is dict:  # a mapping's key: step into its value type
            annotation = get_args(annotation)[1]
            node = node.get(part) if isinstance(node, dict) else None
            continue
        cls = _section_class(annotation, node)
        field = cls.model_fields.get(part) if cls is not None else None
        if field is None:
            return None, None, None
        owner, annotation = cls, field.annotation
        node = node.get(part) if isinstance(node, dict) else None
    return annotation, owner, node


def _fields_at(loc: list[Any], raw: Any, schema: Any) -> list[str]:
    """Valid keys of the config section at `loc` (used to suggest a fix for an unknown key)."""
    annotation, _, node = _walk(schema, loc, raw)
    cls = _section_class(annotation, node)
    return sorted(cls.model_fields) if cls is not None else []


def _models(annotation: Any) -> list[type[BaseModel]]:
    classes: list[type[BaseModel]] = []
    pending = [annotation]
    while pending:
        arg = pending.pop()
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            classes.append(arg)
        else:
            pending += list(get_args(arg))
    return classes


def _tags(cls: type[BaseModel]) -> tuple[Any, ...]:
    field = cls.model_fields.get("type")
    return get_args(field.annotation) if field is not None else ()


def _section_class(annotation: Any, node: Any) -> Any:
    """The pydantic class behind an annotation; for a tagged union, the member the node's `type` names."""
    classes = _models(annotation)
    if isinstance(node, dict) and "type" in node:
        for cls in classes:
            if node["type"] in _tags(cls):
                return cls
    return classes[0] if len(classes) == 1 else None


def _type_options(schema: Any, loc: list[Any], raw: Any) -> list[str]:
    annotation, _, _ = _walk(schema, loc, raw)
    return sorted(str(tag) for cls in _models(annotation) for tag in _tags(cls))


def _type_label(schema: Any, loc: list[Any], raw: Any) -> str:
    _, owner, _ = _walk(schema, loc, raw)
    labels = getattr(owner, "type_labels", {}) if owner is not None else {}
    return next((labels[p] for p in reversed(loc) if isinstance(p, str) and p in labels), "type")
