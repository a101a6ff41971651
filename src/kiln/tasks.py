"""The task registry: each task (supervised, language_modeling, pretraining) registers its config
schema, its train function and its artefact kind; `kiln.api` dispatches on a config's `task:`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.config import raw_config
from kiln.errors import KilnError, did_you_mean
from kiln.registry import Registry

DEFAULT_TASK = "supervised"


@dataclass(frozen=True)
class Task:
    name: str
    load_config: Callable[[Any], Any]  # path / dict / config object → the validated config
    train: Callable[..., Any]  # (config, data, output, resume, from_model, progress, callbacks) → artefact
    kind: str  # the artefact kind its model.json records (kiln.artifact.ARTIFACTS)
    summary: str
    # Optional: data prepared once (config → object its `train` accepts as `data`), and the key of the
    # config parts that data depends on; runs whose configs share a key share the data (kiln tune).
    prepare: Callable[[Any], Any] | None = None
    data_key: Callable[[Any], str] | None = None


TASKS: Registry[Task] = Registry("task")


def task_name(source: Any) -> str:
    """The `task:` of a config given as a path, dict or config object (supervised when absent)."""
    if isinstance(source, (str, Path)):
        source = raw_config(source)
    name = source.get("task") if isinstance(source, dict) else getattr(source, "task", None)
    name = DEFAULT_TASK if name is None else name
    if name not in TASKS:
        options = TASKS.names()
        raise KilnError(f"config error at task: '{name}' is not allowed{did_you_mean(str(name), options)}; "
                        f"valid: {', '.join(options)} (leave task out for a supervised model)")
    return str(name)


def task_of(source: Any) -> Task:
    return TASKS.get(task_name(source))


def load_task_config(source: Any) -> Any:
    """The validated config of whichever task `source` declares (a YAML file is read once)."""
    if isinstance(source, (str, Path)):
        source = raw_config(source)
    return task_of(source).load_config(source)
