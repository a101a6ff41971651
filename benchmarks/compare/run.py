"""Side by side: kiln and the tools a user would pick instead, on the same data, split and seeds.

For each task, every system runs in a fresh interpreter (kiln in this venv, each peer in its own venv
under benchmarks/compare/.venvs, made by `bash benchmarks/compare/setup.sh` or `--setup`), once per
seed, systems interleaved (the order rotates each seed) so that machine load falls on all alike.
Per run: the task metric on the test split, time to first output (process start -> framework
imported, data loaded and preprocessed, training about to start), train + evaluate wall time (from
there to the test metric), whole-process wall time, and peak RSS (wait4's ru_maxrss). The split is
kiln's own for the task, exported once by prepare.py; peers copy kiln's recipe (epochs, batch size,
learning rate (kiln's when kiln uses Adam, else Adam's 0.001) and schedule, early stopping) from it.
A peer that is not installed, or fails, gets a row with its exact error and the rest still runs.

    .venv/bin/python benchmarks/compare/run.py [--setup] [--quick] [--tasks digits,titanic]
        [--seeds 0,1,2] [--kiln-config sms_spam=examples/sms_spam.yaml] [--timeout 3600]
        [--output benchmarks/results/compare.json] [--markdown benchmarks/results/compare.md]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = HERE / ".venvs"
WORKERS = HERE / "workers"

# kiln's config per task: the lead can point a task at a better config here or with --kiln-config.
KILN_CONFIGS: dict[str, str] = {
    "digits": "examples/digits_mlp.yaml",
    "titanic": "examples/titanic.yaml",
    "sms_spam": "examples/sms_spam_ngram.yaml",
    "sst2_10": "examples/sst2_ngram.yaml",
    "sst2_all": "examples/sst2_ngram_cnn.yaml",
    "shakespeare_gpt": "examples/shakespeare_gpt.yaml",
}

# system -> (environment, worker script, worker params)
SYSTEMS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "kiln": ("kiln", "kiln_worker.py", {}),
    "pytorch": ("torch", "torch_worker.py", {}),
    "keras": ("keras", "keras_worker.py", {}),
    "ludwig": ("ludwig", "ludwig_worker.py", {}),
    "sklearn-lr": ("sklearn", "sklearn_worker.py", {"model": "lr"}),
    "sklearn-hgb": ("sklearn", "sklearn_worker.py", {"model": "hgb"}),
    "tfidf-lr": ("sklearn", "sklearn_worker.py", {"model": "tfidf_lr"}),
    "pytorch-gpt": ("torch", "torch_gpt_worker.py", {}),
    "nanogpt": ("nanogpt", "", {}),
}

TEXT_PEERS = ["ludwig", "keras", "tfidf-lr"]
# task -> systems, the metric compared (higher is better unless it is a loss), kiln config overrides, --quick overrides
TASKS: dict[str, dict[str, Any]] = {
    "digits": {"systems": ["pytorch", "keras"], "metric": "accuracy",
               "quick": {"trainer": {"epochs": 3}}},
    "titanic": {"systems": ["ludwig", "sklearn-lr", "sklearn-hgb", "pytorch"], "metric": "accuracy",
                "quick": {"trainer": {"epochs": 3}}},
    "sms_spam": {"systems": TEXT_PEERS, "metric": "f1", "quick": {"trainer": {"epochs": 1}, "data": {"sample": 0.2}}},
    "sst2_10": {"systems": TEXT_PEERS, "metric": "accuracy", "set": {"data": {"sample": 0.1}},
                "quick": {"trainer": {"epochs": 1}, "data": {"sample": 0.02}}},
    "sst2_all": {"systems": TEXT_PEERS, "metric": "accuracy", "quick": {"trainer": {"epochs": 1}, "data": {"sample": 0.05}}},
    "shakespeare_gpt": {"systems": ["nanogpt", "pytorch-gpt"], "metric": "validation_loss",
                        "quick": {"trainer": {"iterations": 50, "eval_interval": 25, "eval_iters": 4}}},
}
LOWER_IS_BETTER = {"validation_loss"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of: {', '.join(TASKS)}")
    p.add_argument("--systems", default=None, help="comma-separated subset of systems (kiln always runs)")
    p.add_argument("--seeds", default="0,1,2", help="training seeds (the split is kiln's config's, the same for all)")
    p.add_argument("--quick", action="store_true", help="development size: fewer epochs / rows / iterations")
    p.add_argument("--set", action="append", default=[], metavar="TASK:SECTION.KEY=VALUE",
                   help="override kiln's config for a task, e.g. gpt:trainer.iterations=500 (value parsed as JSON)")
    p.add_argument("--peer-epochs", action="append", default=[], metavar="SYSTEM=N",
                   help="cap a peer's epochs below kiln's (a slow peer on a small machine), e.g. keras=3; recorded in the results")
    p.add_argument("--peer-seeds", action="append", default=[], metavar="SYSTEM=S1,S2",
                   help="run a slow peer on fewer of the seeds, e.g. keras=0; recorded in the results")
    p.add_argument("--kiln-config", action="append", default=[], metavar="TASK=PATH", help="kiln's config for a task")
    p.add_argument("--setup", action="store_true", help="run setup.sh first (creates the peers' venvs)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run before it is killed and recorded")
    p.add_argument("--work", default=str(ROOT / "runs" / "bench-compare"), help="prepared splits and run directories")
    p.add_argument("--table", action="store_true", help="only write the markdown table of the results file")
    p.add_argument("--fresh", action="store_true", help="start a new results file (default: add to / replace tasks in it)")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "compare.json"))
    p.add_argument("--markdown", default=str(ROOT / "benchmarks" / "results" / "compare.md"))
    args = p.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; valid: {', '.join(TASKS)}")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.systems = None if args.systems is None else set(args.systems.split(","))
    args.peer_epochs = {k: int(v) for k, _, v in (item.partition("=") for item in args.peer_epochs)}
    args.peer_seeds = {k: [int(x) for x in v.split(",")] for k, _, v in (item.partition("=") for item in args.peer_seeds)}
    for item in args.kiln_config:
        task, _, path = item.partition("=")
        if task not in TASKS or not path:
            p.error(f"--kiln-config takes TASK=PATH with TASK in {', '.join(TASKS)}")
        KILN_CONFIGS[task] = path
    return args


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def kiln_config(task: str, quick: bool, sets: list[str]) -> dict[str, Any]:
    from kiln.config import raw_config

    config = merge(raw_config(ROOT / KILN_CONFIGS[task] if not Path(KILN_CONFIGS[task]).is_absolute() else KILN_CONFIGS[task]),
                   TASKS[task].get("set", {}))
    if quick:
        config = merge(config, TASKS[task]["quick"])
    for item in sets:
        name, _, assignment = item.partition(":")
        if name == task:
            dotted, _, value = assignment.partition("=")
            *path, leaf = dotted.split(".")
            patch: dict[str, Any] = {leaf: json.loads(value)}
            for part in reversed(path):
                patch = {part: patch}
            config = merge(config, patch)
    return config


def python_of(env: str) -> tuple[Path | None, str | None]:
    """The interpreter of an environment, or None and why it cannot run."""
    if env == "kiln":
        return Path(sys.executable), None
    status_file = VENVS / env / "status.json"
    if not status_file.is_file():
        return None, f"not installed: run `bash benchmarks/compare/setup.sh {env}` ({status_file} missing)"
    status = json.loads(status_file.read_text())
    if not status.get("ok"):
        return None, f"not installable: {status.get('error')}"
    return VENVS / env / "bin" / "python", None


def run_worker(python: Path, worker: str, task: str, seed: int, work: Path, params: dict[str, Any], timeout: float,
               log: Path) -> dict[str, Any]:
    """One fresh process: its marks, result, wall time and peak RSS."""
    from common import READY, RESULT

    cmd = [str(python), str(WORKERS / worker), "--task", task, "--seed", str(seed), "--work", str(work),
           "--params", json.dumps(params)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "KILN_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "torch", "PYTHONUNBUFFERED": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    start_wall = time.time()
    start = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT, start_new_session=True)
        deadline = start + timeout
        ready, result, lines = None, None, []
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        timed_out = False
        while True:
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, 9)
                timed_out = True
                break
            if not sel.select(timeout=1.0):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(READY):
                ready = float(line.split()[1]) - start_wall
            elif line.startswith(RESULT):
                result = json.loads(line[len(RESULT):])
            else:
                lines.append(line.rstrip())
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    row: dict[str, Any] = {"seed": seed, "wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                           "ttfo_s": None if ready is None else round(ready, 3), "log": str(log)}
    code = os.waitstatus_to_exitcode(status)
    if result is None or code != 0:
        tail = [x for x in log.read_text(errors="replace").splitlines() if x.strip()][-1:] or lines[-1:] or [f"exit {code}"]
        row.update(status="timeout" if timed_out else "failed",
                   error=(f"killed after {timeout:.0f} s" if timed_out else f"exit {code}: {tail[0][:400]}"))
        return row
    row.update(status="ok", metrics=result.pop("metrics"), train_eval_s=round(result.pop("train_eval_s"), 3), extra=result)
    return row


def summarise(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return {"status": rows[0]["status"] if rows else "not run",
                "error": rows[0].get("error") if rows else "none of its seeds was run (--peer-seeds)"}

    def stat(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values)}

    out = {"status": "ok" if len(ok) == len(rows) else "partly failed", "metric": stat([r["metrics"][metric] for r in ok]),
           "train_eval_s": stat([r["train_eval_s"] for r in ok]), "ttfo_s": stat([r["ttfo_s"] for r in ok]),
           "wall_s": stat([r["wall_s"] for r in ok]), "cpu_s": stat([r["cpu_s"] for r in ok if "cpu_s" in r] or [0.0]),
           "peak_rss_mb": stat([r["peak_rss_mb"] for r in ok])}
    for key in ("gen_tokens_per_s_inside_block", "gen_tokens_per_s_past_block", "epochs_run"):
        if all(key in r["extra"] for r in ok):
            out[key] = stat([r["extra"][key] for r in ok])
    if len(ok) < len(rows):
        out["error"] = next(r["error"] for r in rows if r["status"] != "ok")
    return out


def ratios(kiln: dict[str, Any], peer: dict[str, Any]) -> dict[str, float]:
    if kiln.get("status") != "ok" or peer.get("status") not in ("ok", "partly failed"):
        return {}
    keys = ["train_eval_s", "ttfo_s", "wall_s", "cpu_s", "peak_rss_mb"]
    return {k: kiln[k]["mean"] / peer[k]["mean"] for k in keys if peer[k]["mean"] > 0}


def run_task(task: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = TASKS[task]
    config = kiln_config(task, args.quick, args.set)
    work = Path(args.work) / task
    prep = subprocess.run([sys.executable, str(HERE / "prepare.py"), "--config", json.dumps(config), "--work", str(work)],
                          capture_output=True, text=True, cwd=ROOT)
    if prep.returncode != 0:
        raise SystemExit(f"{task}: preparing the split failed: {prep.stderr.strip().splitlines()[-1:]}")
    meta = json.loads((work / "meta.json").read_text())
    systems = ["kiln"] + [s for s in spec["systems"] if args.systems is None or s in args.systems]
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    skipped: dict[str, str] = {}
    for i, seed in enumerate(args.seeds):
        order = systems[i % len(systems):] + systems[:i % len(systems)]
        for system in order:
            env, worker, params = SYSTEMS[system]
            if seed not in args.peer_seeds.get(system, [seed]):
                continue
            python, why = python_of(env)
            if python is None or not worker:
                skipped[system] = why or "no worker"
                continue
            seeded = merge(config, {"trainer": {"seed": seed}}) if system == "kiln" else config
            if system in args.peer_epochs:
                params = {**params, "max_epochs": args.peer_epochs[system]}
            row = run_worker(python, worker, task, seed, work, {**params, "kiln_config": seeded}, args.timeout,
                             work / "logs" / f"{system}-seed{seed}.log")
            rows[system].append(row)
            shown = row["metrics"].get(spec["metric"]) if row["status"] == "ok" else row["error"]
            print(f"  {task} seed {seed} {system}: {shown} ({row['wall_s']:.1f} s, {row['peak_rss_mb']:.0f} MB)", flush=True)
    summary = {s: ({"status": "not run", "error": skipped[s]} if s in skipped else summarise(rows[s], spec["metric"]))
               for s in systems}
    for s in systems[1:]:
        summary[s]["kiln_over_peer"] = ratios(summary["kiln"], summary[s])
    return {"metric": spec["metric"], "kiln_config": KILN_CONFIGS[task], "peer_epochs": args.peer_epochs, "peer_seeds": args.peer_seeds, "config": config, "rows_per_split": meta.get("rows"),
            "systems": summary, "runs": rows}


def _fmt(stat: dict[str, float] | None, digits: int = 1) -> str:
    return "—" if not stat else f"{stat['mean']:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    lines = ["| task (size) | system | test metric, mean ± std (n seeds) | train + eval s | time to first output s | process wall s "
             "| process CPU s | peak RSS MB | kiln / peer: train + eval, first output, CPU, RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task, res in results["tasks"].items():
        size = "quick" if res.get("quick") else "full"
        for system, s in res["systems"].items():
            if s.get("status") not in ("ok", "partly failed"):
                lines.append(f"| {task} ({size}) | {system} | {s.get('status')}: `{s.get('error')}` | | | | | | |")
                continue
            m = s["metric"]
            r = s.get("kiln_over_peer") or {}
            ratio = " / ".join(f"{r[k]:.2f}" if k in r else "—" for k in ("train_eval_s", "ttfo_s", "cpu_s", "peak_rss_mb"))
            note = f" ({s['status']}: `{s['error']}`)" if s["status"] != "ok" else ""
            if system in res.get("peer_epochs", {}):
                note += f" (at most {res['peer_epochs'][system]} epochs)"
            if "gen_tokens_per_s_inside_block" in s:
                note += (f"; generation {s['gen_tokens_per_s_inside_block']['mean']:.0f} tokens/s inside the block, "
                         f"{s['gen_tokens_per_s_past_block']['mean']:.0f} past it")
            cpu = s.get("cpu_s", {})
            lines.append(f"| {task} ({size}) | {system} | {res['metric']} {m['mean']:.4f} ± {m['std']:.4f} ({m['n']}){note} "
                         f"| {_fmt(s['train_eval_s'])} | {_fmt(s['ttfo_s'])} | {_fmt(s['wall_s'])} "
                         f"| {_fmt(cpu) if cpu.get('mean') else '—'} | {_fmt(s['peak_rss_mb'], 0)} | {ratio if r else ''} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(WORKERS))
    from kiln.io import write_json, write_text

    if args.table:  # only render the markdown of what the results file holds
        write_text(args.markdown, markdown(json.loads(Path(args.output).read_text())))
        print(Path(args.markdown).read_text())
        return

    if args.setup:
        subprocess.run(["bash", str(HERE / "setup.sh")], check=False)
    out = Path(args.output)
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
                               "tasks": {}}
    if out.is_file() and not args.fresh:  # tasks run separately accumulate in one file
        results["tasks"] = json.loads(out.read_text()).get("tasks", {})
    for task in args.tasks:
        print(f"{task}: kiln config {KILN_CONFIGS[task]}{' (--quick)' if args.quick else ''}", flush=True)
        stamp = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg(),
                 "quick": args.quick, "seeds": args.seeds, "command": " ".join(sys.argv)}
        results["tasks"][task] = {**stamp, **run_task(task, args), "load_after": os.getloadavg()}
        if out.is_file() and not args.fresh:  # another run may have added a task meanwhile: keep it
            results["tasks"] = {**json.loads(out.read_text()).get("tasks", {}), task: results["tasks"][task]}
        write_json(out, results)  # after every task: a later failure keeps what ran
        write_text(args.markdown, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
