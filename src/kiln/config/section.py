"""The base of every config section: unknown keys are errors, not silently ignored."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A strict config section. `type_labels` names what a tagged union at a key holds
    (e.g. {"model": "model type"}), for error messages such as "unknown model type 'mpl'"."""

    model_config = ConfigDict(extra="forbid")
    type_labels: ClassVar[dict[str, str]] = {}
