"""Language-model throughput: training tokens/s, and generation tokens/s with and without the KV cache.

* training: kiln's one loop (``kiln.training.Trainer`` with ``SampledTask``) on Tiny Shakespeare with the model of
  ``examples/shakespeare_gpt.yaml`` (char-level, 4 layers, d_model 128, block 64, batch 12). One short
  untimed warm-up run, then ``--iterations`` timed iterations; tokens/s is the trainer's own figure
  (batch x block tokens per iteration over the time of the training steps; the one validation pass
  at the end is not counted).
* generation: ``kiln.lm.generate.generate_ids`` on the same architecture (random weights: the speed
  does not depend on them) from a 1-token prompt, greedy, with and without the cache. With
  block_size 64 the cache only helps while the context fits in the block (the first 63 new tokens);
  past the block generation recomputes the last block_size tokens either way. A block-256 model
  shows the cache over a longer context. Each case is repeated and the median reported.

Usage::

    .venv/bin/python benchmarks/lm.py [--threads 1] [--iterations 30] [--repeats 3]
        [--output benchmarks/results/lm.json]
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op / OpenMP threads (default 1)")
    p.add_argument("--iterations", type=int, default=30, help="timed training iterations (default 30)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of each generation case (default 3)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="training precision (default fp32)")
    p.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "lm.json"), help="JSON results path")
    return p.parse_args(argv)


ARGS = _parse_args() if __name__ == "__main__" else None
_THREADS = ARGS.threads if ARGS else 1
os.environ["OMP_NUM_THREADS"] = str(_THREADS)
os.environ["MKL_NUM_THREADS"] = str(_THREADS)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["KILN_THREADS"] = str(_THREADS)

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(_THREADS)

from kiln.io import write_json  # noqa: E402
from kiln.lm.config import load_lm_config  # noqa: E402
from kiln.lm.data import BlockSampler, prepare_data  # noqa: E402
from kiln.lm.generate import generate_ids  # noqa: E402
from kiln.models.gpt import GPT  # noqa: E402
from kiln.training import Trainer  # noqa: E402
from kiln.training.sampled import SampledTask  # noqa: E402

EXAMPLE = os.path.join(ROOT, "examples", "shakespeare_gpt.yaml")


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def bench_training(config: Any, data: Any, iterations: int, precision: str) -> dict[str, Any]:
    def run(n: int) -> dict[str, Any]:
        schedule = config.trainer.lr_schedule.model_copy(update={"warmup": 0})
        trainer_cfg = config.trainer.model_copy(update={"iterations": n, "eval_interval": n, "eval_iters": 1,
                                                        "lr_schedule": schedule, "precision": precision})
        torch.manual_seed(config.trainer.seed)
        net = GPT(config.model, data.tokenizer.vocab_size)
        trainer = Trainer(net, trainer_cfg, torch.device("cpu"), progress=False)
        task = SampledTask(BlockSampler(net.block_size), data.train, data.validation, trainer_cfg)
        tick = time.perf_counter()
        row = trainer.fit(task)[-1]
        return {"tokens_per_s": row["tokens_per_s"], "wall_s": time.perf_counter() - tick, "parameters": net.num_parameters()}

    run(3)  # warm-up: allocator, kernels
    result = run(iterations)
    per_iter = config.trainer.batch_size * config.model.block_size
    return {"iterations": iterations, "tokens_per_iteration": per_iter, "precision": precision,
            "s_per_iteration": per_iter / result["tokens_per_s"], **result}


def bench_generation(model_cfg: Any, vocab: int, new_tokens: int, repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    net = GPT(model_cfg, vocab).eval()
    out: dict[str, Any] = {"block_size": model_cfg.block_size, "new_tokens": new_tokens, "prompt_tokens": 1}
    for use_cache in (True, False):
        list(generate_ids(net, [2], 8, temperature=0, use_cache=use_cache))  # warm-up
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            tokens = list(generate_ids(net, [2], new_tokens, temperature=0, use_cache=use_cache))
            times.append(time.perf_counter() - tick)
        out["cache" if use_cache else "no_cache"] = {"tokens_per_s": len(tokens) / statistics.median(times), "times_s": times}
    out["speedup"] = out["cache"]["tokens_per_s"] / out["no_cache"]["tokens_per_s"]
    return out


def main(args: argparse.Namespace) -> int:
    from kiln.console import console as make_console
    from rich.table import Table

    console = make_console()  # off a terminal: nothing wrapped at 80 columns
    config = load_lm_config(EXAMPLE)
    if not os.path.isfile(config.data.train or ""):
        console.print(f"[red]{config.data.train} not found (set KILN_DATA)[/]")
        return 2
    result: dict[str, Any] = {
        "benchmark": "lm",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": EXAMPLE,
        "machine": {"cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__,
                    "python": platform.python_version(), "threads": args.threads, "torch_num_threads": torch.get_num_threads()},
        "loadavg_start": _loadavg(),
    }
    console.print(f"threads={args.threads} torch={torch.__version__} loadavg={result['loadavg_start']}")
    data = prepare_data(config)
    result["training"] = bench_training(config, data, args.iterations, args.precision)
    vocab = data.tokenizer.vocab_size
    long_cfg = config.model.model_copy(update={"block_size": 256})
    cases = [(config.model, 63), (config.model, 256), (long_cfg, 255)]
    result["generation"] = [bench_generation(cfg, vocab, n, args.repeats) for cfg, n in cases]
    result["loadavg_end"] = _loadavg()

    m = config.model
    table = Table(title=f"kiln.lm throughput ({m.layers} layers, d_model {m.d_model}, {args.threads} thread(s))")
    for col in ("workload", "tokens/s", "detail"):
        table.add_column(col, justify="left" if col != "tokens/s" else "right")
    t = result["training"]
    table.add_row(f"training ({t['precision']}, batch {config.trainer.batch_size} x block {m.block_size})",
                  f"{t['tokens_per_s']:.0f}", f"{t['s_per_iteration'] * 1e3:.0f} ms/iteration over {t['iterations']} iterations")
    for g in result["generation"]:
        for key, label in (("cache", "KV cache"), ("no_cache", "no cache")):
            detail = f"median of {args.repeats}" + (f"; cache speed-up x{g['speedup']:.2f}" if key == "cache" else "")
            table.add_row(f"generate {g['new_tokens']} tokens, block {g['block_size']}, {label}",
                          f"{g[key]['tokens_per_s']:.0f}", detail)
    console.print(table)
    console.print(f"[dim]loadavg start {result['loadavg_start']}, end {result['loadavg_end']} "
                  f"(on a shared machine, other processes slow every figure).[/]")
    write_json(args.output, result)
    console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
