"""`kiln export`, `kiln compress`, `kiln explain`: thin commands over kiln.deploy (imports stay lazy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from kiln.errors import KilnError

out = Console(soft_wrap=True)


def export_cmd(
    model_dir: Annotated[Path, typer.Argument(help="saved supervised model or run directory")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the .onnx file to write (or a directory: DIR/model.onnx)")],
    format_: Annotated[str, typer.Option("--format", "-f", help="export format (onnx)")] = "onnx",
) -> None:
    """Export a model to ONNX (dynamic batch and sequence axes); its preprocessing is written beside it as JSON."""
    from kiln.deploy.export import export_onnx, sidecar

    if format_ != "onnx":
        raise KilnError(f"--format: unknown export format '{format_}'; valid: onnx")
    path = export_onnx(model_dir, output)
    out.print(f"ONNX model written to {path} ({path.stat().st_size / 1024:.1f} KiB); preprocessing: {sidecar(path)}")


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
