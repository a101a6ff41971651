"""One trial: the base config with the trial's values set, trained on kiln's one Trainer with the data
prepared once for the search. A Trainer callback reports the metric after every round, so the
engine's pruner can stop the trial; a trial that raises is a failure, never a prune."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import KilnError
from kiln.evaluate.run_files import deferred_plots
from kiln.tasks import Task
from kiln.training.callbacks import Callback
from kiln.tuning.config import TuneConfig
from kiln.tuning.space import SearchSpace

if TYPE_CHECKING:
    from kiln.training.trainer import Trainer

Report = Callable[[float, int], None]  # (metric value, round) → None; raises the engine's "pruned" exception to stop


class SearchError(KilnError):
    """A problem of the whole search (not of one trial's values): the search stops with one line."""


class TrialFailed(Exception):
    """A trial raised; the engine records it as failed with this one-line message."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, KilnError) else f"{type(exc).__name__}: {text}".rstrip(": ")


class MetricReporter(Callback):
    """Reports the searched metric after every round; at the end, the value of the weights the trial keeps
    (with restore_best, the best round by the trainer's monitored metric; else the last round)."""

    def __init__(self, tune: TuneConfig, report: Report) -> None:
        self.metric, self.key, self.report = tune.metric, tune.key, report
        self.rounds = 0
        self.kept: dict[str, Any] | None = None

    def on_round_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        if self.key not in row:
            options = ", ".join(k.replace("_", ".", 1) for k in row if k.startswith(("train_", "validation_")))
            raise SearchError(f"tune.metric '{self.metric}' is not computed by this config; valid: {options}")
        self.rounds = int(row[trainer.unit])
        self.report(float(row[self.key]), self.rounds)

    def on_train_end(self, trainer: "Trainer") -> None:
        history = trainer.history
        best = trainer.monitor.best_round
        restored = trainer.cfg.restore_best and any("validation_loss" in r for r in history)
        self.kept = next((r for r in history if r[trainer.unit] == best), history[-1]) if restored else history[-1]


@dataclass
class TrialResult:
    value: float
    rounds: int
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)
    pending: list[Callable[[], None]] = field(default_factory=list)  # the run's plots and report.html, not yet written

    def write_report(self) -> None:
        """Write the trial's plots and report.html (done for trials that improve on the best so far)."""
        while self.pending:
            self.pending.pop()()


def improves(value: float, best: float | None, direction: str) -> bool:
    return best is None or (value < best if direction == "minimize" else value > best)


class TrialRunner:
    """Everything a trial needs, in any process: the base config, the space, the task and the data cache."""

    def __init__(self, raw: dict[str, Any], tune: TuneConfig, task: Task, directory: Path) -> None:
        self.raw, self.tune, self.task, self.directory = raw, tune, task, directory
        self.space = SearchSpace(tune)
        self.data: dict[str, Any] = {}  # data key → prepared data (loaded once per distinct data config)

    def prepare(self, config: Any) -> tuple[Any, float]:
        """The prepared data for a config (None when the task prepares nothing) and the seconds it took now."""
        if self.task.prepare is None or self.task.data_key is None:
            return None, 0.0
        key = self.task.data_key(config)
        if key in self.data:
            return self.data[key], 0.0
        tick = time.perf_counter()
        self.data[key] = self.task.prepare(config)
        return self.data[key], time.perf_counter() - tick

    def trial_dir(self, number: int | str) -> Path:
        return self.directory / "trials" / (f"{number:04d}" if isinstance(number, int) else number)

    def run(self, number: int | str, values: dict[str, Any], report: Report, pruned: tuple[type[BaseException], ...]) -> TrialResult:
        """Train one trial; raises one of `pruned` when the engine stops it, TrialFailed when it fails."""
        tick = time.perf_counter()
        run_dir = self.trial_dir(number)
        shutil.rmtree(run_dir, ignore_errors=True)  # a retried trial number never reuses a half-written directory
        reporter = MetricReporter(self.tune, report)
        try:
            config = self.task.load_config(self.space.apply(self.raw, values))
            data, _ = self.prepare(config)
            with deferred_plots() as pending:
                model = self.task.train(config, data, run_dir, None, None, False, [reporter])
        except SearchError:
            raise
        except pruned:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        except Exception as exc:  # noqa: BLE001  (any error of a trial's values fails that trial only)
            shutil.rmtree(run_dir, ignore_errors=True)
            raise TrialFailed(one_line(exc)) from exc
        shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)  # the trial is over; its model/ stays
        kept = reporter.kept or {}
        return TrialResult(float(kept[self.tune.key]), reporter.rounds, time.perf_counter() - tick,
                           getattr(model, "metrics", {}), pending)
