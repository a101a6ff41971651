"""`kiln serve`, `kiln keys ...`, `kiln registry ...` and `kiln monitor`; added to the main app by `register`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from kiln.console import console
from kiln.errors import KilnError

out = console()
keys_app = typer.Typer(no_args_is_help=True, help="API keys for `kiln serve --api-keys FILE`.")
registry_app = typer.Typer(no_args_is_help=True, help="Versioned model registry (push, list, promote, rollback).")

RegistryOpt = Annotated[Optional[Path], typer.Option("--registry", "-r", help="registry folder (default: $KILN_REGISTRY or ./registry)")]


def _default_registry() -> Path:
    from kiln.serve.versions import DEFAULT_REGISTRY

    return DEFAULT_REGISTRY


def serve_cmd(
    model_dirs: Annotated[Optional[list[Path]], typer.Argument(help="model or run directories (model name = directory name)")] = None,
    registry: Annotated[Optional[Path], typer.Option("--registry", "-r", help="serve the promoted versions in this registry; hot-swaps on promote/rollback")] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes")] = 1,
    api_keys: Annotated[Optional[Path], typer.Option("--api-keys", help="key file made by `kiln keys add` (no file = no access control)")] = None,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", help="rows per predict call; 1 = no batching")] = 32,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="how long to wait to fill a batch")] = 5.0,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="per-request limit (504 past it)")] = 10.0,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="request body limit (413 past it)")] = 1 << 20,
    poll_s: Annotated[float, typer.Option("--poll-s", help="registry poll interval")] = 1.0,
    sample_rate: Annotated[float, typer.Option("--sample-rate", help="fraction of predicted rows stored for `kiln monitor` (masked)")] = 0.0,
    sample_db: Annotated[Optional[Path], typer.Option("--sample-db", help="sample store (default <registry>/monitoring.sqlite)")] = None,
    drift_interval_s: Annotated[float, typer.Option("--drift-interval-s", help="recompute drift gauges in /metrics this often (0 = never)")] = 60.0,
    runs: Annotated[Optional[Path], typer.Option("--runs", help="training runs shown on the dashboard at / (default ./runs when it exists)")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log one line per request")] = True,
    queue_size: Annotated[int, typer.Option("--queue-size", help="predict requests waiting per model (429 past it)")] = 256,
    generate_workers: Annotated[int, typer.Option("--generate-workers", help="sampling threads per language model")] = 2,
    generate_queue_size: Annotated[int, typer.Option("--generate-queue-size", help="generate requests waiting per language model (429 past it)")] = 8,
    stream_timeout_s: Annotated[float, typer.Option("--stream-timeout-s", help="limit of a streamed generation")] = 300.0,
    generate_nice: Annotated[int, typer.Option("--generate-nice", help="lower the sampling threads' CPU priority by this much (0-19, Linux)")] = 10,
    busy_hold_s: Annotated[float, typer.Option("--busy-hold-s", help="hold a 429 answer this long (a client retrying at once cannot storm the server)")] = 0.25,
    runtime: Annotated[str, typer.Option("--runtime", help="torch, or onnx: serve `kiln export` outputs through onnxruntime")] = "torch",
) -> None:
    """Serve models over HTTP: POST /v1/models/NAME/predict, GET /v1/models, /health, /ready, /metrics, /docs."""
    from kiln.serve.server import serve
    from kiln.serve.settings import ServeSettings

    if max_batch_size < 1:
        raise KilnError(f"--max-batch-size must be at least 1 (got {max_batch_size})")
    if not 0.0 <= sample_rate <= 1.0:
        raise KilnError(f"--sample-rate must be between 0 and 1 (got {sample_rate})")
    for flag, value in (("--timeout-s", timeout_s), ("--stream-timeout-s", stream_timeout_s), ("--queue-size", queue_size),
                        ("--generate-workers", generate_workers)):
        if value <= 0:
            raise KilnError(f"{flag} must be positive (got {value})")
    if not 0 <= port <= 65535:
        raise KilnError(f"--port must be between 0 and 65535 (got {port})")
    if workers < 1:
        raise KilnError(f"--workers must be at least 1 (got {workers})")
    if max_body_bytes < 1:
        raise KilnError(f"--max-body-bytes must be at least 1 (got {max_body_bytes})")
    if poll_s < 0.05:
        raise KilnError(f"--poll-s must be at least 0.05 seconds (got {poll_s}); 0 would spin a core")
    if max_wait_ms < 0 or drift_interval_s < 0:
        raise KilnError("--max-wait-ms and --drift-interval-s must be 0 or more")
    if runtime not in ("torch", "onnx"):
        raise KilnError(f"--runtime: unknown runtime '{runtime}'; valid: torch, onnx")
    if runtime == "onnx" and registry is not None:
        raise KilnError("--runtime onnx serves exported files given as arguments, not a registry")
    if generate_queue_size < 0:
        raise KilnError(f"--generate-queue-size must be 0 or more (got {generate_queue_size})")
    if not 0 <= generate_nice <= 19:
        raise KilnError(f"--generate-nice must be between 0 and 19 (got {generate_nice})")
    if not 0.0 <= busy_hold_s <= 60.0:
        raise KilnError(f"--busy-hold-s must be between 0 and 60 seconds (got {busy_hold_s})")
    settings = ServeSettings(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, timeout_s=timeout_s,
                             max_body_bytes=max_body_bytes, api_keys=api_keys.resolve() if api_keys else None, poll_s=poll_s,
                             sample_rate=sample_rate, sample_db=sample_db.resolve() if sample_db else None,
                             drift_interval_s=drift_interval_s, runs_dir=_runs_folder(runs), queue_size=queue_size,
                             generate_workers=generate_workers, generate_queue_size=generate_queue_size,
                             stream_timeout_s=stream_timeout_s, generate_nice=generate_nice, busy_hold_s=busy_hold_s,
                             runtime=runtime)
    serve(list(model_dirs or []), registry, settings, host=host, port=port, workers=workers, access_log=access_log)


def _runs_folder(runs: Optional[Path]) -> Optional[Path]:
    if runs is None:
        return Path("runs").resolve() if Path("runs").is_dir() else None
    if not runs.is_dir():
        raise KilnError(f"--runs {runs}: not a folder")
    return runs.resolve()


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="who the key is for, e.g. team-a")],
    models: Annotated[str, typer.Option("--models", help="comma-separated model names the key may call ('*' = all)")],
    file: Annotated[Path, typer.Option("--file", "-f", help="key file (JSON, or YAML by suffix)")] = Path("api_keys.json"),
) -> None:
    """Create a random key; print it once, store only its sha256 hash."""
    from kiln.serve.auth import add_key

    key = add_key(file, name, models.split(","))
    typer.echo(key)
    console(stderr=True).print(f"key '{name}' added to {file}; it is shown only now — store it safely", highlight=False)


@registry_app.command("push")
def registry_push(
    run_dir: Annotated[Path, typer.Argument(help="run or model directory")],
    name: Annotated[str, typer.Option("--name", "-n", help="model name")],
    registry: RegistryOpt = None,
    promote: Annotated[bool, typer.Option("--promote", help="promote this version now (the first version always is)")] = False,
) -> None:
    """Copy a trained model in as the next version of NAME."""
    from kiln.serve.versions import ModelStore

    v = ModelStore(registry or _default_registry()).push(run_dir, name, promote=True if promote else None)
    out.print(f"pushed {v.name} version {v.version}{' (promoted)' if v.promoted else ''} → {v.path}")


@registry_app.command("list")
def registry_list(
    name: Annotated[Optional[str], typer.Argument(help="only this model")] = None,
    registry: RegistryOpt = None,
) -> None:
    """Models and versions; * marks the promoted one (served unless `status` says a server could not load it)."""
    from rich.table import Table

    from kiln.serve.versions import ModelStore

    reg = ModelStore(registry or _default_registry(), create=False)
    table = Table(title=f"registry {reg.root}")
    for col in ("name", "version", "promoted", "pushed", "metrics", "status"):
        table.add_column(col)
    for v in reg.versions(name):
        status = f"failed to load: {v.load_error}" if v.load_error else ("served" if v.promoted else "")
        table.add_row(v.name, str(v.version), "*" if v.promoted else "", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.created_at)),
                      _metric_summary(v.metrics), status)
    out.print(table)


def _metric_summary(metrics: dict) -> str:
    for split in ("test", "validation"):
        m = metrics.get(split)
        if isinstance(m, dict):
            picks = [f"{k}={m[k]:.4g}" for k in ("accuracy", "f1", "rmse", "mae", "r2", "loss") if isinstance(m.get(k), (int, float))]
            if picks:
                return f"{split}: " + ", ".join(picks[:3])
    return ""


@registry_app.command("promote")
def registry_promote(
    name: Annotated[str, typer.Argument()],
    version: Annotated[int, typer.Argument()],
    registry: RegistryOpt = None,
) -> None:
    """Serve VERSION of NAME (servers polling the registry swap it in without a restart)."""
    from kiln.serve.versions import ModelStore

    v = ModelStore(registry or _default_registry(), create=False).promote(name, version)
    out.print(f"promoted {v.name} version {v.version}")


@registry_app.command("rollback")
def registry_rollback(
    name: Annotated[str, typer.Argument()],
    registry: RegistryOpt = None,
) -> None:
    """Undo the latest promotion of NAME: the version promoted before it is served again."""
    from kiln.serve.versions import ModelStore

    v = ModelStore(registry or _default_registry(), create=False).rollback(name)
    out.print(f"rolled back {v.name}: version {v.version} is promoted")


def monitor_cmd(
    name: Annotated[str, typer.Argument(help="model name in the registry")],
    registry: RegistryOpt = None,
    version: Annotated[Optional[int], typer.Option("--version", help="model version (default: the promoted one)")] = None,
    sample_db: Annotated[Optional[Path], typer.Option("--sample-db", help="sample store (default <registry>/monitoring.sqlite)")] = None,
    since_hours: Annotated[Optional[float], typer.Option("--since-hours", help="only samples from the last N hours")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="HTML report (default monitor-NAME.html)")] = None,
    psi_threshold: Annotated[float, typer.Option("--psi-threshold", help="PSI above this flags drift")] = 0.2,
    ks_alpha: Annotated[float, typer.Option("--ks-alpha", help="KS p-value below this flags drift")] = 0.01,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="exit 1 when drift is flagged")] = False,
) -> None:
    """Drift of served inputs and predictions vs training: PSI, KS test, prediction shift."""
    from kiln.serve.monitoring import monitor

    report, html = monitor(name, registry or _default_registry(), version=version, sample_db=sample_db, since_hours=since_hours,
                           output=output, psi_threshold=psi_threshold, ks_alpha=ks_alpha)
    from kiln.monitor.report import drift_table

    out.print(drift_table(report))
    out.print(f"report: {html}")
    if fail_on_drift and report["drift"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
    app.command("monitor")(monitor_cmd)
    app.add_typer(keys_app, name="keys")
    app.add_typer(registry_app, name="registry")
