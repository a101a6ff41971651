"""`kiln tune` / `kiln.tune`: check the space, prepare the data once, run the trials on an engine,
then write the trials table, the best config, the best trial's run directory and a report."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from kiln.config import raw_config, split_sections
from kiln.errors import KilnError
from kiln.io import read_json, write_json
from kiln.tasks import task_of
from kiln.training.run import config_changes
from kiln.tuning.config import TuneConfig
from kiln.tuning.space import SearchSpace
from kiln.tuning.trial import TrialRunner

SEARCH_FILE = "search.json"
RESUMABLE = ("tune.trials", "tune.time_budget_s", "tune.parallel")  # may change when resuming


class Search:
    """One search directory: the validated pieces every engine and worker needs."""

    def __init__(self, raw: dict[str, Any], directory: Path, progress: bool) -> None:
        rest, sections = split_sections(raw)
        if "tune" not in sections:
            raise KilnError("this config has no tune: section saying what to search (docs/tuning.md)")
        self.raw, self.rest, self.tune = raw, rest, sections["tune"]
        self.task = task_of(rest)
        self.task.load_config(rest)  # the base config itself must be valid
        self.runner = TrialRunner(rest, self.tune, self.task, directory.resolve())  # absolute: Ray workers run elsewhere
        self.runner.space.check(rest, self.task.load_config)
        self.target = self.tune.trials
        if self.tune.sampler.type == "grid":
            self.target = min(self.target, self.runner.space.grid_size())
        self.directory, self.progress = directory, progress
        self.unit = "epoch" if self.task.name == "supervised" else "round"
        self.deadline: float | None = None
        self.started = time.time()
        self.storage: Any = None  # the study's storage, opened once by the optuna engine for the whole search

    @property
    def space(self) -> SearchSpace:
        return self.runner.space

    def base_point(self) -> dict[str, Any]:
        """The first trial's values with `tune.start_from_base` (the base config's, where inside the space);
        empty when off, with the grid sampler (it visits every point anyway) or when none lies inside."""
        if not self.tune.start_from_base or self.tune.sampler.type == "grid":
            return {}
        return self.space.base_point(self.rest, self.task.load_config(self.rest))

    def say(self, line: str) -> None:
        if self.progress:
            print(line, flush=True)

    def print_trial(self, trials: list[Any], trial: Any) -> None:
        """One complete line per finished trial: its outcome, its values and the search so far."""
        if not self.progress:
            return
        from kiln.tuning.outputs import describe_trial, search_status

        self.say(f"{describe_trial(trial, self)} | {search_status(trials, self)}")


def _check_directory(search: Search, resume: bool) -> None:
    from kiln.tuning.study import DB

    directory = search.directory
    saved = directory / SEARCH_FILE
    if not resume:
        if (directory / DB).exists():
            raise KilnError(f"{directory} already holds a search; add --resume to continue it, or choose another -o")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KilnError(f"cannot create the search directory {directory}: {exc.strerror or exc}") from None
        write_json(saved, search.raw)
        return
    if not (directory / DB).is_file() or not saved.is_file():
        raise KilnError(f"cannot resume: {directory} holds no kiln search (no {DB} and {SEARCH_FILE})")
    changes = [c for c in config_changes(read_json(saved), search.raw) if not c.startswith(RESUMABLE)]
    if changes:
        raise KilnError(f"cannot resume {directory}: the config differs from the search's: {'; '.join(changes[:5])}")
    write_json(saved, search.raw)


def tune(config: Any, output: str | Path | None = None, resume: bool = False, progress: bool = False) -> Any:
    """Search hyperparameters as the config's `tune:` section says; returns a TuneResult (study summary,
    trials table, best config, best model). `resume=True` continues a killed search in `output`."""
    from kiln.tuning.outputs import write_outputs

    if resume and output is None:
        raise KilnError("--resume needs the search directory: kiln tune CONFIG -o DIR --resume")
    raw = raw_config(config)
    directory = Path(output) if output is not None else Path("runs") / f"tune-{time.strftime('%Y%m%d-%H%M%S')}"
    search = Search(raw, directory, progress)
    _check_directory(search, resume)
    engine = ENGINES[search.tune.engine]
    try:
        engine(search, resume)
        return write_outputs(search)
    finally:
        if search.storage is not None:
            from kiln.tuning.study import close_storage

            close_storage(search.storage)


def run_optuna(search: Search, resume: bool) -> None:
    from kiln.tuning.local import run_local
    from kiln.tuning.study import BASE, counted, load_study, open_storage, recover_interrupted

    tune = search.tune
    storage = search.storage = open_storage(search.directory, new=not resume)  # kept for the trials and outputs
    study = load_study(storage, tune, search.space, create=not resume)
    base = {} if resume else search.base_point()
    if base:
        study.enqueue_trial(base, user_attrs={BASE: True})
    requeued = recover_interrupted(study, storage) if resume else []
    for number in requeued:
        shutil.rmtree(search.runner.trial_dir(number), ignore_errors=True)
    trials = study.get_trials(deepcopy=False)
    done = sum(counted(t) for t in trials)
    _prepare_data(search)
    if resume:
        again = f"; interrupted trial{'s' if len(requeued) > 1 else ''} {', '.join(map(str, requeued))} queued again" if requeued else ""
        search.say(f"resuming {search.directory}: {done} of {search.target} trials done{again}")
    search.deadline = None if tune.time_budget_s is None else time.time() + tune.time_budget_s
    run_local(search, search.target - done, len(trials))


def _prepare_data(search: Search) -> None:
    """Load and preprocess the base config's data once, before any trial (and before workers fork)."""
    tune = search.tune
    config = search.task.load_config(search.rest)
    data, seconds = search.runner.prepare(config)
    if tune.metric.startswith("validation.") and getattr(data, "has_validation", True) is False:
        raise KilnError(f"tune.metric is {tune.metric} but there is no validation data; set data.split.validation > 0 "
                        "(or data.validation), or search on a train.* metric")
    sampler = tune.sampler.type + (f" (seed {tune.sampler.seed})" if tune.sampler.seed is not None else "")
    shared = f"; data prepared once in {seconds:.1f} s" if data is not None else ""
    search.say(f"kiln tune: {search.target} trial{'s' if search.target != 1 else ''}, {tune.engine} engine, {sampler} sampler, {tune.pruner.type} pruner, "
               f"{tune.direction} {tune.metric}, {tune.parallel} at a time{shared}; study in {search.directory}")


def run_ray(search: Search, resume: bool) -> None:
    from kiln.tuning.ray_engine import import_ray, run_ray_search

    import_ray()  # one line when Ray is missing, before anything else
    run_ray_search(search, resume, _prepare_data)


ENGINES = {"optuna": run_optuna, "ray": run_ray}


def best_config_yaml(search: Search, values: dict[str, Any], header: str) -> str:
    """The base config (without tune:) with the best values: ready for `kiln train`."""
    return header + yaml.safe_dump(search.space.apply(search.rest, values), sort_keys=False)


__all__ = ["Search", "TuneConfig", "best_config_yaml", "tune"]
