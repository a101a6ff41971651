"""Atomic file writes and pickle-free state files (safetensors for tensors, JSON for the rest)."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from kiln.errors import KilnError


_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto `path` only if the block succeeds.

    A failed write (disk full, a parent that is a file, no permission) leaves the old file intact and
    is one KilnError line naming the path."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)  # keeps the suffix (matplotlib reads it)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the file gets the mode a plain open() would give it
        os.replace(tmp, path)
    except OSError as exc:
        raise KilnError(f"cannot write {path}: {os_error_reason(exc, path)}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def os_error_reason(exc: OSError, path: Path) -> str:
    """What went wrong, in words a user can act on."""
    if isinstance(exc, (NotADirectoryError, FileExistsError)) or exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"{blocker} is a file, not a directory"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    return exc.strerror or str(exc)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file; ValueError (with the reason) for invalid JSON, non-UTF-8 text or nesting too deep to parse."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor]) -> Path:
    """Save tensors as safetensors, atomically (shared storage is cloned first)."""
    flat = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp))
    return Path(path)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def split_state(state: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tensors, scalars) into a JSON skeleton and a tensor dict."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, key: str) -> Any:
        if type(obj) is dict and _plain_json(obj):  # e.g. a history row: stored as it is (join_state returns it)
            return obj
        if isinstance(obj, torch.Tensor):
            tensors[key] = obj
            return {"__tensor__": key}
        if isinstance(obj, dict):
            return {"__dict__": [[walk(k, f"{key}.k{i}"), walk(v, f"{key}.{i}")] for i, (k, v) in enumerate(obj.items())]}
        if isinstance(obj, (list, tuple)):
            return {"__list__" if isinstance(obj, list) else "__tuple__": [walk(v, f"{key}.{i}") for i, v in enumerate(obj)]}
        return obj

    return walk(state, prefix or "s"), tensors


_SCALARS = (str, int, float, bool, type(None))
_MARKERS = frozenset(("__tensor__", "__dict__", "__list__", "__tuple__"))


def _plain_json(obj: dict[Any, Any]) -> bool:
    """A flat dict of str keys and JSON scalars that join_state would give back unchanged."""
    return all(type(k) is str and type(v) in _SCALARS for k, v in obj.items()) and _MARKERS.isdisjoint(obj)


def join_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `split_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {join_state(k, tensors): join_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            return [join_state(v, tensors) for v in skeleton["__list__"]]
        if "__tuple__" in skeleton:
            return tuple(join_state(v, tensors) for v in skeleton["__tuple__"])
    return skeleton


def save_state(path: str | Path, state: Any) -> Path:
    """Write a nested state as ONE safetensors file (tensors + JSON skeleton in its metadata), atomically."""
    skeleton, tensors = split_state(state)
    flat = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={"kiln_state": json.dumps(skeleton, default=_json_default)})
    return Path(path)


def load_state(path: str | Path) -> Any:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        skeleton = json.loads(handle.metadata()["kiln_state"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return join_state(skeleton, tensors)
