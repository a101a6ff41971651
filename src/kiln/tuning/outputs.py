"""What a search leaves in its directory: trials.csv (and the same table printed), best.yaml (ready for
`kiln train`), best/ (the best trial's run directory: `kiln predict DIR/best ...`), summary.json and
report.html; and the TuneResult that `kiln.tune` returns."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from kiln.artifact import load as load_artifact
from kiln.errors import KilnError
from kiln.io import read_json, write_json, write_text
from kiln.tuning.study import BASE, INTERRUPTED, close_storage, load_study, open_storage, optuna

if TYPE_CHECKING:
    from kiln.tuning.search import Search

TERMINAL_ROWS = 30  # the printed table shows every trial up to this many, else the best ones


@dataclass
class TuneResult:
    """A finished search: `summary` (a dict, also summary.json), `trials` (DataFrame, also trials.csv),
    `best_config` (a config dict, also best.yaml), `best_model` (the best trial's model) and `directory`."""

    summary: dict[str, Any]
    trials: pd.DataFrame
    best_config: dict[str, Any]
    best_model: Any
    directory: Path

    @property
    def best_value(self) -> float:
        return float(self.summary["best_value"])

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.summary["best_params"])


# -- one trial, as a line ---------------------------------------------------------------------------
def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def trial_state(trial: Any) -> str:
    state = trial.state.name.lower()
    if state == "fail":
        return "interrupted" if trial.user_attrs.get(INTERRUPTED) else "failed"
    return state


def trial_values(trial: Any, search: "Search") -> dict[str, Any]:
    return trial.user_attrs.get("values") or search.space.decode(trial.params)


def trial_rounds(trial: Any) -> int | None:
    if "rounds" in trial.user_attrs:
        return int(trial.user_attrs["rounds"])
    return max(trial.intermediate_values) if trial.intermediate_values else None


def trial_value(trial: Any) -> float | None:
    """The objective of a complete trial; the last reported value of a pruned one."""
    if trial.value is not None:
        return float(trial.value)
    if trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return None


def describe_trial(trial: Any, search: "Search") -> str:
    state, metric, unit = trial_state(trial), search.tune.metric, search.unit
    rounds, value = trial_rounds(trial), trial_value(trial)
    seconds = trial.duration.total_seconds() if trial.duration is not None else 0.0
    values = " ".join(f"{k}={fmt(v)}" for k, v in trial_values(trial, search).items())
    if state == "complete":
        what = f"complete: {metric} {fmt(value)} after {rounds} {unit}s"
    elif state == "pruned":
        what = f"pruned after {rounds} {unit}{'s' if rounds != 1 else ''} ({metric} {fmt(value)})"
    else:
        what = f"{state}: {trial.user_attrs.get('error', 'no error recorded')}"
    base = " (the base config)" if trial.user_attrs.get(BASE) else ""
    return f"trial {trial.number}{base} {what} in {seconds:.1f} s | {values}"


def search_status(trials: list[Any], search: "Search") -> str:
    states = [trial_state(t) for t in trials]
    done = sum(s in ("complete", "pruned", "failed") for s in states)
    best = _best(trials, search.tune.direction)
    best_text = f"best {fmt(best.value)} (trial {best.number})" if best is not None else "no complete trial yet"
    return (f"{done}/{search.target} done: {states.count('complete')} complete, {states.count('pruned')} pruned, "
            f"{states.count('failed')} failed | {best_text}")


def _best(trials: list[Any], direction: str) -> Any:
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    if not complete:
        return None
    pick = min if direction == "minimize" else max
    return pick(complete, key=lambda t: (t.value, t.number) if direction == "minimize" else (t.value, -t.number))


# -- the table --------------------------------------------------------------------------------------
def trials_frame(trials: list[Any], search: "Search") -> pd.DataFrame:
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state.name in ("RUNNING", "WAITING"):
            continue
        row: dict[str, Any] = {"trial": t.number, "state": trial_state(t), search.tune.metric: trial_value(t),
                               f"{search.unit}s": trial_rounds(t),
                               "seconds": _seconds(t)}
        for path, value in trial_values(t, search).items():
            row[path] = value if not isinstance(value, (list, dict)) else fmt(value)
        row["error"] = t.user_attrs.get("error", "")
        rows.append(row)
    return pd.DataFrame(rows)


def _seconds(trial: Any) -> float | None:
    if trial.duration is None or trial.user_attrs.get(INTERRUPTED):
        return None
    return round(trial.duration.total_seconds(), 2)


def format_table(frame: pd.DataFrame, search: "Search", best: int | None) -> str:
    """A plain-text table (no wrapping or cutting, whatever the terminal width)."""
    if frame.empty:
        return "no trials"
    shown = frame
    note = ""
    if len(frame) > TERMINAL_ROWS:
        complete = frame[frame["state"] == "complete"]
        shown = complete.sort_values(search.tune.metric, ascending=search.tune.direction == "minimize").head(TERMINAL_ROWS)
        note = f"({len(shown)} best of {len(frame)} trials; all in {search.directory / 'trials.csv'})\n"
    columns = [c for c in shown.columns if c != "error" or shown["error"].astype(bool).any()]
    cells = [[("*" if best == r["trial"] else "") + str(r["trial"])] +
             [_cell(r[c], c) for c in columns[1:]] for _, r in shown.iterrows()]
    header = list(columns)
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return note + "\n".join(lines) + ("\n* best trial" if best is not None else "")


def _cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if column == "error":
        text = str(value)
        return text if len(text) <= 70 else text[:67] + "..."
    return fmt(value)


def _numeric(text: str) -> bool:
    try:
        float(text.lstrip("*"))
        return True
    except ValueError:
        return False


# -- everything at the end ---------------------------------------------------------------------------
def write_outputs(search: "Search") -> TuneResult:
    from kiln.tuning.report import write_report

    storage = search.storage or open_storage(search.directory)
    try:
        study = load_study(storage, search.tune, search.space)
        trials = study.get_trials(deepcopy=True)
        importances = param_importances(study)
    finally:
        if storage is not search.storage:
            close_storage(storage)
    directory, tune = search.directory, search.tune
    frame = trials_frame(trials, search)
    write_text(directory / "trials.csv", frame.to_csv(index=False))
    best = _best(trials, tune.direction)
    states = frame["state"].tolist() if not frame.empty else []
    summary: dict[str, Any] = {
        "metric": tune.metric, "goal": tune.direction, "engine": tune.engine, "sampler": tune.sampler.type,
        "pruner": tune.pruner.type, "trials": search.target,
        **{state: states.count(state) for state in ("complete", "pruned", "failed", "interrupted")},
        "wall_time_s": round(time.time() - search.started, 2),
        "best_trial": None, "best_value": None, "best_params": {}, "importances": importances,
    }
    search.say(format_table(frame, search, best.number if best else None))
    if best is None:
        write_json(directory / "summary.json", summary)
        first = next((e for e in frame.get("error", []) if e), "")
        raise KilnError(f"no trial completed ({summary['pruned']} pruned, {summary['failed']} failed"
                        + (f"; first error: {first}" if first else "") + f"); trials in {directory / 'trials.csv'}")
    values = trial_values(best, search)
    summary.update(best_trial=best.number, best_value=float(best.value), best_params=values)
    header = (f"# Best of {len(frame)} trials of `kiln tune` ({tune.metric} {fmt(best.value)}, trial {best.number}).\n"
              f"# Train it: kiln train {directory / 'best.yaml'}\n")
    from kiln.tuning.search import best_config_yaml

    write_text(directory / "best.yaml", best_config_yaml(search, values, header))
    best_dir = _copy_best(search, best.number)
    write_json(directory / "summary.json", summary)
    write_report(search, trials, frame, summary, importances)
    model = load_artifact(best_dir)
    model.run_dir = best_dir
    model.metrics = read_json(best_dir / "metrics.json") if (best_dir / "metrics.json").is_file() else {}
    if (best_dir / "history.csv").is_file():
        model.history = pd.read_csv(best_dir / "history.csv").to_dict("records")
    search.say(f"best: trial {best.number}, {tune.metric} {fmt(best.value)} | "
               + " ".join(f"{k}={fmt(v)}" for k, v in values.items()))
    search.say(f"best config: {directory / 'best.yaml'} | best model: {best_dir} | report: {directory / 'report.html'}")
    return TuneResult(summary, frame, search.space.apply(search.rest, values), model, directory)


def _copy_best(search: "Search", number: int) -> Path:
    source, target = search.runner.trial_dir(number), search.directory / "best"
    if not (source / "model").is_dir():
        raise KilnError(f"the best trial's run directory {source} is missing; re-run the search")
    staging = search.directory / ".best.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def param_importances(study: Any) -> dict[str, float]:
    """fANOVA importances over the complete trials ({} when fewer than two, or nothing varies)."""
    opt = optuna()
    complete = study.get_trials(deepcopy=False, states=(opt.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        evaluator = opt.importance.FanovaImportanceEvaluator(seed=0)
        return {k: round(float(v), 4) for k, v in opt.importance.get_param_importances(study, evaluator=evaluator).items()}
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
