"""Training-loop overhead of kiln versus a hand-written PyTorch loop doing the same work.

For each workload both sides train the *same* network (``kiln.models.build_network``) from the
*same* seed on the *same* tensors (kiln's own preprocessing), visiting the *same* mini-batches
(kiln's per-epoch permutation), with the same optimizer. Only the loop differs:

* kiln:  ``kiln.train(config, output=tmpdir, progress=False)``; per-epoch ``epoch_time`` from
  ``model.history`` (the training pass only: ``Trainer.fit`` stops the clock before validation,
  early-stopping bookkeeping and checkpointing). The whole ``kiln.train`` call is timed too.
* plain: forward, loss, backward, step, ``running_loss += loss.item() * batch``, timed per epoch
  with ``time.perf_counter`` around the same span (``train()``, shuffling and the batch loop). After
  each epoch it runs a validation pass (eval mode, no gradients), untimed like kiln's: the work
  between epochs leaves both sides' next epoch starting from the same cold caches
  (``--no-plain-validation`` drops it).

Runs are interleaved (kiln/plain, alternating which goes first) and repeated; the first epoch of
every run is dropped as warm-up and medians are reported, so that a loaded shared CPU skews both
sides alike. CPU time per epoch (``time.process_time``) is recorded beside wall time: with one
thread it barely moves when other processes compete for the cores. Usage::

    .venv/bin/python benchmarks/overhead.py [--repeats 5] [--epochs 5] [--threads 1]
        [--output benchmarks/results/overhead.json] [--workloads digits,titanic]
        [--plain-metric] [--no-warmup] [--check]
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RATIO = 1.10


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="interleaved kiln/plain run pairs per workload (default 5)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per run; the first is dropped as warm-up (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op / OpenMP threads (default 1)")
    p.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "overhead.json"), help="JSON results path")
    p.add_argument("--workloads", default="digits,titanic", help="comma-separated subset of: digits, titanic")
    p.add_argument("--plain-metric", action="store_true",
                   help="the plain loop also counts correct predictions each batch, as kiln does for train accuracy")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed 1-epoch warm-up run of each side")
    p.add_argument("--no-plain-validation", action="store_true",
                   help="the plain loop skips its per-epoch validation pass (kiln still validates every epoch)")
    p.add_argument("--check", action="store_true", help=f"exit 1 when a kiln/plain ratio is above {TARGET_RATIO}")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.epochs < 2 or args.threads < 1:
        p.error("need --repeats >= 1, --epochs >= 2 (the first epoch is dropped) and --threads >= 1")
    return args


ARGS = _parse_args() if __name__ == "__main__" else None

# Threads are fixed deliberately, before torch is imported: OpenMP reads these at load time.
_THREADS = ARGS.threads if ARGS else 1
os.environ["OMP_NUM_THREADS"] = str(_THREADS)
os.environ["MKL_NUM_THREADS"] = str(_THREADS)
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
os.environ["KILN_THREADS"] = str(_THREADS)

import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(_THREADS)

import kiln  # noqa: E402
from kiln.supervised.task import load_splits  # noqa: E402
from kiln.supervised.config import load_supervised_config  # noqa: E402
from kiln.data.preprocessor import Preprocessor  # noqa: E402
from kiln.models import build_network  # noqa: E402
from kiln.runtime import seed_everything, select_device  # noqa: E402


# -- workloads ----------------------------------------------------------------------------------
def _data_dir() -> str:
    return os.environ.get("KILN_DATA") or os.path.join(os.path.dirname(ROOT), "shared", "data")


def digits_config(epochs: int, threads: int) -> dict[str, Any]:
    return {
        "data": {"train": "sklearn:digits", "split": {"validation": 0.2, "test": 0.2, "seed": 42}},
        "input_features": [{"name": "image", "type": "image"}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": {"type": "mlp", "hidden": [256, 128], "dropout": 0.4, "activation": "relu"},
        "trainer": {"epochs": epochs, "batch_size": 32, "optimizer": "adam", "learning_rate": 1e-3, "threads": threads},
    }


def titanic_config(epochs: int, threads: int) -> dict[str, Any]:
    return {
        "data": {"train": os.path.join(_data_dir(), "titanic", "train.csv")},
        "input_features": [
            {"name": "Pclass", "type": "category"},
            {"name": "Sex", "type": "binary"},
            *({"name": n, "type": "numeric"} for n in ("Age", "Fare", "SibSp", "Parch")),
        ],
        "output_features": [{"name": "Survived", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [64, 32]},
        "trainer": {"epochs": epochs, "batch_size": 64, "optimizer": "adam", "learning_rate": 1e-3, "threads": threads},
    }


WORKLOADS = {"digits": digits_config, "titanic": titanic_config}


def _available(name: str) -> str | None:
    """None when the workload can run, else why not."""
    if name == "titanic":
        path = titanic_config(1, 1)["data"]["train"]
        if not os.path.isfile(path):
            return f"{path} not found (set KILN_DATA)"
    return None


# -- the two sides ------------------------------------------------------------------------------
@dataclass
class Run:
    epoch_times: list[float]  # wall seconds per epoch (kiln: history's epoch_time)
    train_losses: list[float]
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds over the same span
    total_s: float | None = None  # whole kiln.train call (kiln side only)


@dataclass
class Prepared:
    """Tensors built once per workload with kiln's own preprocessing, for the plain loop."""

    config: Any
    pre: Preprocessor
    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    rows: int
    validation: Any = None  # kiln.data.preprocessor.TensorData of the validation split, or None


def prepare(config_dict: dict[str, Any]) -> Prepared:
    config = load_supervised_config(config_dict)
    frames, _ = load_splits(config)
    pre = Preprocessor(config).fit(frames["train"])
    train = pre.transform(frames["train"], where="train split")
    (out,) = pre.outputs
    validation = pre.transform(frames["validation"], where="validation split") if "validation" in frames else None
    return Prepared(config, pre, train.inputs, train.targets[out.name], len(train), validation)


@contextmanager
def _cpu_per_epoch(sink: list[float]) -> Iterator[None]:
    """Record process CPU time of each training pass: `Trainer._round` less the validation inside it
    (`kiln.supervised.task.evaluate_split`), the span `epoch_time` covers.

    Read-only instrumentation: both functions are wrapped for one kiln.train call and restored
    after. If the trainer's layout changes, kiln's CPU column is simply left empty.
    """
    try:
        from kiln.supervised import task as table_task
        from kiln.training.trainer import Trainer
        round_fn, evaluate = Trainer._round, table_task.evaluate_split
    except (ImportError, AttributeError):
        yield
        return
    inside_validation = [0.0]

    def timed_round(self: Any, *args: Any, **kwargs: Any) -> Any:
        inside_validation[0] = 0.0
        start = time.process_time()
        try:
            return round_fn(self, *args, **kwargs)
        finally:
            sink.append(time.process_time() - start - inside_validation[0])

    def timed_evaluate(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return evaluate(*args, **kwargs)
        finally:
            inside_validation[0] += time.process_time() - start

    Trainer._round, table_task.evaluate_split = timed_round, timed_evaluate
    try:
        yield
    finally:
        Trainer._round, table_task.evaluate_split = round_fn, evaluate


def run_kiln(config_dict: dict[str, Any]) -> Run:
    cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp, _cpu_per_epoch(cpu):
        gc.collect()
        tick = time.perf_counter()
        model = kiln.train(config_dict, output=tmp, progress=False)
        total = time.perf_counter() - tick
    history = model.history
    return Run([float(r["epoch_time"]) for r in history], [float(r["train_loss"]) for r in history],
               cpu if len(cpu) == len(history) else [], total)


def run_plain(prep: Prepared, epochs: int, count_correct: bool = False, validate: bool = True) -> Run:
    """A typical hand-written loop over the same module, batches and optimizer as kiln."""
    cfg = prep.config.trainer
    device = select_device(cfg.device)
    (out,) = prep.pre.outputs
    if out.type == "category":
        loss_fn = F.cross_entropy

        def n_correct(logits: torch.Tensor, y: torch.Tensor) -> int:
            return int((logits.argmax(-1) == y).sum().item())
    elif out.type == "binary":
        def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y)

        def n_correct(logits: torch.Tensor, y: torch.Tensor) -> int:
            return int(((logits.squeeze(-1) > 0).float() == y).sum().item())
    else:  # pragma: no cover - both workloads are classifiers
        raise ValueError(f"unsupported output type {out.type}")

    seed_everything(cfg.seed)  # kiln.train seeds, then builds the network: same initial weights
    net = build_network(prep.config.model, prep.pre.inputs, prep.pre.outputs).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.l2)
    inputs = {k: v.to(device) for k, v in prep.inputs.items()}
    y = prep.target.to(device)
    n, bs = prep.rows, min(int(cfg.batch_size), prep.rows)

    run = Run([], [])
    gc.collect()
    for epoch in range(1, epochs + 1):
        tick, cpu = time.perf_counter(), time.process_time()
        net.train()
        # Same permutation as kiln's Trainer._train_epoch, so both sides see identical batches.
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)).to(device)
        running_loss, correct = 0.0, 0
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            yb = y[idx]
            logits = net({k: v[idx] for k, v in inputs.items()})[out.name]
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(idx)
            if count_correct:
                correct += n_correct(logits.detach(), yb)
        train_loss = running_loss / n
        run.cpu_times.append(time.process_time() - cpu)
        run.epoch_times.append(time.perf_counter() - tick)
        run.train_losses.append(train_loss)
        if validate and prep.validation is not None:  # untimed, as kiln's validation is outside epoch_time
            _validation_loss(net, prep, loss_fn, int(cfg.eval_batch_size), device)
    return run


def _validation_loss(net: torch.nn.Module, prep: Prepared, loss_fn: Any, batch_size: int, device: torch.device) -> float:
    """The per-epoch validation pass of a typical hand-written loop: eval mode, no gradients."""
    (out,) = prep.pre.outputs
    data, total = prep.validation, 0.0
    net.eval()
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            part = data.take(slice(start, start + batch_size))
            logits = net({k: v.to(device) for k, v in part.inputs.items()})[out.name]
            total += float(loss_fn(logits, part.targets[out.name].to(device))) * len(part)
    return total / len(data)


# -- statistics and reporting -------------------------------------------------------------------
def _measured(runs: list[Run], attr: str = "epoch_times") -> list[float]:
    return [t for r in runs for t in getattr(r, attr)[1:]]  # drop each run's first epoch


def _quantiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    if len(values) < 2:
        return {"median": values[0], "p25": values[0], "p75": values[0], "min": values[0]}
    q = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "p25": q[0], "p75": q[2], "min": min(values)}


def _machine(threads: int) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = None
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "kiln": getattr(kiln, "__version__", None),
        "threads": threads,
        "torch_num_threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KILN_THREADS")},
        "device": str(select_device("auto")),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover
        return None


def _write_json_atomic(path: str, payload: dict[str, Any]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".overhead-", suffix=".json.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def bench_workload(name: str, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    config_dict = WORKLOADS[name](args.epochs, args.threads)
    prep = prepare(config_dict)
    batches = -(-prep.rows // min(int(prep.config.trainer.batch_size), prep.rows))
    log(f"[bold]{name}[/]: {prep.rows} training rows, {batches} batches/epoch")
    if not args.no_warmup:  # lazy imports (plots, report), allocator and kernel warm-up; not recorded
        run_kiln(WORKLOADS[name](1, args.threads))
        run_plain(prep, 1, args.plain_metric, not args.no_plain_validation)
    kiln_runs: list[Run] = []
    plain_runs: list[Run] = []
    for r in range(args.repeats):
        for side in ("kiln", "plain") if r % 2 == 0 else ("plain", "kiln"):
            if side == "kiln":
                kiln_runs.append(run_kiln(config_dict))
            else:
                plain_runs.append(run_plain(prep, args.epochs, args.plain_metric, not args.no_plain_validation))
        k, p = statistics.median(kiln_runs[-1].epoch_times[1:]), statistics.median(plain_runs[-1].epoch_times[1:])
        log(f"  repeat {r + 1}/{args.repeats}: kiln {k * 1e3:.2f} ms/epoch, plain {p * 1e3:.2f} ms/epoch, ratio {k / p:.3f}")

    kiln_q, plain_q = _quantiles(_measured(kiln_runs)), _quantiles(_measured(plain_runs))
    kiln_cpu, plain_cpu = _quantiles(_measured(kiln_runs, "cpu_times")), _quantiles(_measured(plain_runs, "cpu_times"))
    paired = [statistics.median(k.epoch_times[1:]) / statistics.median(p.epoch_times[1:]) for k, p in zip(kiln_runs, plain_runs)]
    # Same seed, same batches, same module: the per-epoch training losses should agree closely.
    diffs = [abs(a - b) / max(abs(a), 1e-12) for k, p in zip(kiln_runs, plain_runs) for a, b in zip(k.train_losses, p.train_losses)]
    ratio = kiln_q["median"] / plain_q["median"]
    return {
        "config": config_dict,
        "train_rows": prep.rows,
        "batches_per_epoch": batches,
        "kiln": {
            "epoch_s": kiln_q,
            "epoch_cpu_s": kiln_cpu,
            "train_call_s": _quantiles([r.total_s for r in kiln_runs if r.total_s is not None]),
            "raw_epoch_times_s": [r.epoch_times for r in kiln_runs],
            "raw_epoch_cpu_s": [r.cpu_times for r in kiln_runs],
            "raw_train_call_s": [r.total_s for r in kiln_runs],
            "train_losses": [r.train_losses for r in kiln_runs],
        },
        "plain": {
            "counts_correct": args.plain_metric,
            "validates_each_epoch": not args.no_plain_validation and prep.validation is not None,
            "epoch_s": plain_q,
            "epoch_cpu_s": plain_cpu,
            "raw_epoch_times_s": [r.epoch_times for r in plain_runs],
            "raw_epoch_cpu_s": [r.cpu_times for r in plain_runs],
            "train_losses": [r.train_losses for r in plain_runs],
        },
        "ratio": ratio,
        "paired_ratio_median": statistics.median(paired),
        "paired_ratios": paired,
        "min_ratio": kiln_q["min"] / plain_q["min"],
        "cpu_ratio": kiln_cpu["median"] / plain_cpu["median"] if kiln_cpu and plain_cpu else None,
        "within_target": ratio <= TARGET_RATIO,
        "max_train_loss_rel_diff": max(diffs) if diffs else None,
    }


def main(args: argparse.Namespace) -> int:
    from kiln.console import console as make_console
    from rich.table import Table

    console = make_console()  # off a terminal: nothing wrapped at 80 columns
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        console.print(f"[red]unknown workload(s) {unknown}; valid: {', '.join(WORKLOADS)}[/]")
        return 2

    result: dict[str, Any] = {
        "benchmark": "overhead",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"repeats": args.repeats, "epochs": args.epochs, "dropped_warmup_epochs": 1,
                     "warmup_run": not args.no_warmup, "threads": args.threads, "plain_metric": args.plain_metric,
                     "plain_validation": not args.no_plain_validation},
        "target_ratio": TARGET_RATIO,
        "machine": _machine(args.threads),
        "loadavg_start": _loadavg(),
        "workloads": {},
        "skipped": {},
    }
    console.print(f"threads={args.threads} repeats={args.repeats} epochs={args.epochs} torch={torch.__version__} "
                  f"cpus={result['machine']['usable_cpus']} loadavg={result['loadavg_start']}")
    for name in names:
        why = _available(name)
        if why:
            console.print(f"[yellow]skipping {name}: {why}[/]")
            result["skipped"][name] = why
            continue
        result["workloads"][name] = bench_workload(name, args, console.print)
    result["loadavg_end"] = _loadavg()

    table = Table(title=f"kiln vs plain PyTorch: train-loop time per epoch ({args.repeats} repeats x {args.epochs - 1} epochs "
                        f"after a dropped warm-up epoch, {args.threads} thread(s))")
    for col in ("workload", "batches", "kiln ms", "plain ms", "ratio", "paired", "min ratio", "cpu ratio",
                f"<= {TARGET_RATIO:.2f}", "kiln.train s", "loss diff"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    for name, w in result["workloads"].items():
        k, p = w["kiln"]["epoch_s"], w["plain"]["epoch_s"]
        diff, cpu = w["max_train_loss_rel_diff"], w["cpu_ratio"]
        table.add_row(
            name, str(w["batches_per_epoch"]), f"{k['median'] * 1e3:.2f}", f"{p['median'] * 1e3:.2f}",
            f"{w['ratio']:.3f}", f"{w['paired_ratio_median']:.3f}", f"{w['min_ratio']:.3f}",
            "n/a" if cpu is None else f"{cpu:.3f}",
            "[green]yes[/]" if w["within_target"] else "[red]no[/]",
            f"{w['kiln']['train_call_s']['median']:.2f}", "n/a" if diff is None else f"{diff:.0e}",
        )
    console.print(table)
    console.print("[dim]ms: median wall time per epoch (quartiles and raw times are in the JSON). ratio = kiln median / plain "
                  "median (the target); paired = median of per-repeat ratios; min ratio = fastest kiln epoch / fastest plain "
                  "epoch; cpu ratio = the same medians in process CPU time. kiln.train s = median of the whole call (load, "
                  "preprocess, train, validate, metrics, plots, report). loss diff = largest relative difference of the "
                  f"per-epoch training losses (same work on both sides). plain loop counts correct predictions: "
                  f"{'yes' if args.plain_metric else 'no'}; validates each epoch (untimed, like kiln): "
                  f"{'no' if args.no_plain_validation else 'yes'}. loadavg start {result['loadavg_start']}, end {result['loadavg_end']}.[/]")
    _write_json_atomic(args.output, result)
    console.print(f"wrote {args.output}")
    if args.check and not all(w["within_target"] for w in result["workloads"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
