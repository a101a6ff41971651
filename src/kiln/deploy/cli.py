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


def compress_cmd(
    model_dir: Annotated[Path, typer.Argument(help="saved supervised model or run directory")],
    output: Annotated[Path, typer.Option("--output", "-o", help="directory for the compressed model")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML file with a `compress:` section")] = None,
    quantize: Annotated[Optional[str], typer.Option("--quantize", help="dynamic or static int8 quantisation")] = None,
    engine: Annotated[Optional[str], typer.Option("--engine", help="quantisation engine: torch or onnxruntime")] = None,
    prune: Annotated[Optional[float], typer.Option("--prune", help="share of weights to prune, e.g. 0.5")] = None,
    prune_criterion: Annotated[Optional[str], typer.Option("--prune-criterion", help="magnitude, activation (|w| x input norm) or reconstruct (activation, then the kept weights re-fit)")] = None,
    prune_scope: Annotated[Optional[str], typer.Option("--prune-scope", help="global (one budget over all layers) or layer (the same share of each)")] = None,
    fine_tune_epochs: Annotated[Optional[int], typer.Option("--fine-tune-epochs", help="epochs of fine-tuning after pruning")] = None,
    max_metric_drop: Annotated[Optional[float], typer.Option("--max-metric-drop", help="refuse if the test metric drops more")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="labelled test data (default: the model's own test split)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no fine-tuning progress bar")] = False,
) -> None:
    """Quantise and/or prune a model; print a before/after table (size, parameters, latency, metrics)."""
    from kiln.deploy.compress import REPORT, compress
    from kiln.deploy.spec import load_spec

    spec = load_spec(config, **{"quantize.type": quantize, "quantize.engine": engine, "prune.amount": prune, "prune.criterion": prune_criterion, "prune.scope": prune_scope,
                                "prune.fine_tune_epochs": fine_tune_epochs, "max_metric_drop": max_metric_drop})
    report = compress(model_dir, output, spec, data=data, progress=not quiet)
    out.print("\n".join(report["table"]), markup=False, highlight=False)
    out.print(f"compressed model written to {output} (report: {output / REPORT})")


def explain_cmd(
    model_dir: Annotated[Path, typer.Argument(help="saved supervised model or run directory")],
    data: Annotated[str, typer.Argument(help="data file with the input columns (with labels: permutation importance on it)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="directory for explain.html, explanations.json and PNGs")],
    rows: Annotated[str, typer.Option("--rows", help="rows to explain: START:STOP, N or N,M,...")] = "0:10",
    steps: Annotated[int, typer.Option("--steps", help="integrated-gradients steps")] = 50,
    repeats: Annotated[int, typer.Option("--repeats", help="permutation-importance repeats")] = 5,
) -> None:
    """Explain predictions: integrated gradients per feature / token / pixel, and permutation importance."""
    from kiln.deploy.explain import explain

    if steps < 2 or repeats < 1:
        raise KilnError("--steps must be at least 2 and --repeats at least 1")
    report = explain(model_dir, data, rows, output, steps, repeats)
    importance = report.get("importance", {})
    for name, stats in sorted(importance.get("features", {}).items(), key=lambda kv: -kv[1]["mean"]):
        out.print(f"{name:>24}  {stats['mean']:+.4f} ± {stats['std']:.4f}  (drop in {importance['metric']} when shuffled)")
    out.print(f"{len(report['rows'])} rows explained; completeness error p90 {report['completeness_error_p90']:.4f}; "
              f"report: {output / 'explain.html'}")


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)
    app.command("export")(export_cmd)
    app.command("compress")(compress_cmd)
