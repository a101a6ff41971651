"""The Optuna study of a search: stored in SQLite inside the search directory (so a killed search
resumes), with the configured sampler and pruner. Shared by the optuna and ray engines."""

from __future__ import annotations

import logging
import math
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.tuning.config import TuneConfig
from kiln.tuning.space import SearchSpace

STUDY_NAME = "kiln"
DB = "study.db"
INTERRUPTED = "interrupted"
BASE = "base_config"  # user attribute of the trial that runs the base config's values (tune.start_from_base)


def optuna() -> Any:
    import optuna as _optuna

    _optuna.logging.set_verbosity(logging.ERROR)  # kiln prints its own line per trial
    return _optuna


def open_storage(directory: Path, new: bool = False) -> Any:
    """The study's SQLite storage; waits for a lock instead of failing when trials run in several processes.
    `new`: the file is created now, by this Optuna, so the schema-version check (Optuna loads its ~20
    migration scripts for it, 20-80 ms) is skipped; an existing file (resume, outputs) is checked.
    Write-ahead log with `synchronous=NORMAL`: a commit (every reported epoch) appends to study.db-wal
    without an fsync, ~0.03 ms instead of ~5 ms here; a killed process loses nothing committed (only a
    power cut may lose the last commits, never corrupt the file). Every connection, including the ones
    that create the tables of a new study, is opened that way (`SQLiteConnect`)."""
    path = (directory / DB).resolve()
    return optuna().storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"creator": SQLiteConnect(str(path))},
                                        skip_compatibility_check=new)


class SQLiteConnect:
    """SQLAlchemy's `creator` for the study's file: the connection pysqlite would open, then the
    write-ahead log and `synchronous=NORMAL`. A class, so the storage still pickles (Ray)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> Any:
        import sqlite3

        connection = sqlite3.connect(self.path, timeout=120, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection


def close_storage(storage: Any) -> None:
    """Drop pooled connections (before forking worker processes)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def make_sampler(tune: TuneConfig, space: SearchSpace, offset: int = 0) -> Any:
    """The sampler; `offset` (trials already run, worker index) shifts the seed so a resumed or parallel
    search does not propose the same random start-up points again."""
    samplers = optuna().samplers
    s = tune.sampler
    seed = None if s.seed is None else s.seed + offset
    if s.type == "random":
        return samplers.RandomSampler(seed=seed)
    if s.type == "grid":
        return samplers.GridSampler(space.grid(), seed=s.seed)  # grid order fixed by the seed; visited points are skipped
    if s.type == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=tune.startup_trials)
    with warnings.catch_warnings():  # Optuna ≥ 4.9 marks `gamma` deprecated (to go in 6.0); it still works
        warnings.simplefilter("ignore", FutureWarning)
        return samplers.TPESampler(seed=seed, n_startup_trials=tune.startup_trials, multivariate=s.multivariate,
                                   n_ei_candidates=s.ei_candidates, gamma=partial(good_trials, s.good_fraction))


def good_trials(fraction: float, finished: int) -> int:
    """How many of the finished trials TPE models as the good ones (TPE's γ split): `fraction` of them,
    rounded up, at most 25. Optuna's default is 0.1; kiln's 0.25 (docs/tuning.md) fits small budgets, where
    0.1 models one or two trials as good."""
    return min(math.ceil(fraction * finished), 25)


def make_pruner(tune: TuneConfig, one_process: bool = False) -> Any:
    """The pruner; `one_process` (trials run one after another in this process) lets the median pruner
    read the complete trials once per trial instead of once per epoch (OneProcessMedian)."""
    pruners = optuna().pruners
    p = tune.pruner
    if p.type == "median":
        median = pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs)
        return OneProcessMedian(median) if one_process else median
    if p.type == "asha":
        return pruners.SuccessiveHalvingPruner(min_resource=max(1, p.warmup_epochs), reduction_factor=p.reduction_factor)
    return pruners.NopPruner()


class OneProcessMedian:
    """Optuna's median pruner, given the study's complete trials as read at the trial's first report.
    Optuna's asks the storage for them at every epoch: one SQL read of the running trial and its
    reports each time, ~3 ms an epoch here. When trials run one at a time in one process, no trial
    completes while another runs, so the list read once per trial is the one it would read every
    epoch: the same decisions. (Hyperband-style pruners are never wrapped: Optuna checks their type.)"""

    def __init__(self, pruner: Any) -> None:
        self.pruner = pruner
        self.trial: int | None = None
        self.complete: list[Any] = []

    def prune(self, study: Any, trial: Any) -> bool:
        if trial.number != self.trial:
            self.trial = trial.number
            self.complete = study.get_trials(deepcopy=False, states=(optuna().trial.TrialState.COMPLETE,))
        return self.pruner.prune(_CompleteTrials(study, self.complete), trial)


class _CompleteTrials:
    """A study whose `get_trials(states=(COMPLETE,))` answers from a list read before."""

    def __init__(self, study: Any, complete: list[Any]) -> None:
        self._study, self._complete = study, complete

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        if not deepcopy and states is not None and tuple(states) == (optuna().trial.TrialState.COMPLETE,):
            return self._complete
        return self._study.get_trials(deepcopy=deepcopy, states=states)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


def load_study(storage: Any, tune: TuneConfig, space: SearchSpace, offset: int = 0, create: bool = False,
               one_process: bool = False) -> Any:
    try:
        return optuna().create_study(storage=storage, study_name=STUDY_NAME, direction=tune.direction,
                                     sampler=make_sampler(tune, space, offset), pruner=make_pruner(tune, one_process),
                                     load_if_exists=not create)
    except optuna().exceptions.DuplicatedStudyError:
        raise KilnError("the search directory already holds a study; add --resume to continue it") from None


def counted(trial: Any) -> bool:
    """Trials that count towards `tune.trials`: complete, pruned, or failed by their own error."""
    state = optuna().trial.TrialState
    if trial.state in (state.COMPLETE, state.PRUNED):
        return True
    return trial.state == state.FAIL and not trial.user_attrs.get(INTERRUPTED)


def recover_interrupted(study: Any, storage: Any) -> list[int]:
    """Trials left RUNNING by a killed search: mark them failed (interrupted, not counted) and queue
    their values again, so the resumed search re-runs them. Returns their numbers."""
    state = optuna().trial.TrialState
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == state.RUNNING
             or (t.state == state.FAIL and t.user_attrs.get(INTERRUPTED) and not t.user_attrs.get("requeued"))]
    for trial in stale:  # RUNNING: killed; FAIL + interrupted: stopped with Ctrl-C
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
        storage.set_trial_user_attr(trial_id, "requeued", True)
        storage.set_trial_user_attr(trial_id, "error", "interrupted: the search was stopped during this trial; its values ran again on resume")
        if trial.state == state.RUNNING:
            storage.set_trial_state_values(trial_id, state.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    return [t.number for t in stale]
