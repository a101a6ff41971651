"""The base of every config section: unknown keys are errors, not silently ignored, and true/false
is never taken as a number."""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    """A strict config section. `type_labels` names what a tagged union at a key holds
    (e.g. {"model": "model type"}), for error messages such as "unknown model type 'mpl'"."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    type_labels: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        """pydantic's lax mode reads `epochs: true` as 1; a number field refuses true/false."""
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and field is not None and _numeric(field.annotation):
                    raise ValueError(f"{key} should be a number, not {str(value).lower()}")
        return data


def _numeric(annotation: Any) -> bool:
    """Whether a field holds a number: int/float, maybe Annotated, optional, or beside string literals ('full')."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _numeric(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return any(_numeric(a) for a in members) and all(_numeric(a) or _string_literal(a) for a in members)
    return annotation in (int, float)


def _string_literal(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Literal and all(isinstance(a, str) for a in typing.get_args(annotation))
