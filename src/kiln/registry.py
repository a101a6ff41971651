"""Tiny name → object registries, so a new feature, model or metric is one file plus one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from kiln.errors import KilnError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping filled with the `register` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        if name not in self:
            valid = ", ".join(sorted(self._items))
            raise KilnError(f"unknown {self.kind} '{name}'{did_you_mean(name, self._items)}; valid: {valid}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
