"""Loading a model directory for serving: any failure is one KilnError line that names the file.

kiln's loader raises KilnError for most bad input, but a corrupt or empty `weights.safetensors`, an
invalid `model.json` or a wrong-typed field in it surface as other exceptions; they are mapped here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiln.api import load
from kiln.errors import KilnError

META, WEIGHTS = "model.json", "weights.safetensors"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_files(path: Path) -> None:
    """`model.json` must be a JSON object and `weights.safetensors` (when there) a readable safetensors header."""
    meta = path / META
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KilnError(f"cannot serve {meta}: not a valid JSON file ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise KilnError(f"cannot serve {meta}: expected a JSON object, got {type(data).__name__}")
    weights = path / WEIGHTS
    if weights.exists():
        from safetensors import safe_open

        try:
            if weights.stat().st_size == 0:
                raise ValueError("the file is empty")
            with safe_open(str(weights), framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # noqa: BLE001 - safetensors' own error types vary by version
            raise KilnError(f"cannot serve {weights}: not a readable safetensors file ({_first_line(exc)})") from None


def load_model(path: Path, runtime: str = "torch") -> Any:
    """`kiln.load(path)` (or, runtime onnx, an exported file) with every failure as one line naming the file."""
    if runtime == "onnx":
        from kiln.deploy.export import load_onnx

        try:
            return load_onnx(path)
        except KilnError as exc:
            raise KilnError(f"cannot serve {exc}") from None

    check_files(path)
    try:
        return load(path)
    except KilnError as exc:
        message = str(exc)
        if not message.startswith("cannot serve"):
            message = f"cannot serve {message}" if str(path) in message else f"cannot serve {path / META}: {message}"
        raise KilnError(message) from None
    except Exception as exc:  # noqa: BLE001 - a wrong-typed or incomplete model.json
        raise KilnError(f"cannot serve {path / META}: unexpected content ({_first_line(exc)})") from None
