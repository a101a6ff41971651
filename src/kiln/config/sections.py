"""Top-level config sections owned by a package other than the task (e.g. `tune:`): the package
registers its schema here; every task's config then accepts the section, validated by that schema,
and the task itself never sees it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from kiln.config.explain import explain
from kiln.errors import KilnError

SECTIONS: dict[str, type[BaseModel]] = {}  # section name → schema (kiln.config imports nothing of kiln's but errors)


def register_section(name: str, schema: type[BaseModel]) -> type[BaseModel]:
    if SECTIONS.get(name, schema) is not schema:
        raise ValueError(f"config section '{name}' is registered twice")
    SECTIONS[name] = schema
    return schema


def validate_section(name: str, value: Any) -> Any:
    """The validated section `name` (its registered schema); errors are one line naming `name.…`."""
    schema = SECTIONS[name]
    if isinstance(value, schema):
        return value
    raw = value if isinstance(value, dict) else {}
    try:
        return schema.model_validate(value if value is not None else {})
    except ValidationError as exc:
        where = explain(exc, raw, schema)
        where = f"{name}{where}" if where.startswith(":") else f"{name}.{where}"
        raise KilnError(f"config error at {where}") from None


def split_sections(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config without registered sections, those sections validated by their schemas)."""
    owned = {name: validate_section(name, raw[name]) for name in SECTIONS if name in raw}
    return {k: v for k, v in raw.items() if k not in owned}, owned
