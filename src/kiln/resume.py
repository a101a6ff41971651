"""Resuming a run: its saved config must equal the new one; the differences are listed otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.errors import KilnError


def _diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str) for d in _diff(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))]
    return [] if old == new else [f"{path}: {old!r} → {new!r}"]


def check_resume(run_dir: Path, config: Any, load: Callable[[Path], Any] | None = None) -> None:
    """Refuse to resume a run whose saved config.yaml (read with `load`) differs from `config`."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise KilnError(f"cannot resume: {run_dir} is not a kiln run directory (no config.yaml)")
    if load is None:
        from kiln.config import load_config as load
    old = load(saved).model_dump(mode="json")
    changes = _diff(old, config.model_dump(mode="json"))
    if changes:
        raise KilnError(f"cannot resume {run_dir}: the config differs from the run's: {'; '.join(changes[:5])}")
