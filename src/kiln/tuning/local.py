"""The embedded engine (`engine: optuna`): trials run in this process, or with `parallel: N` in N
worker processes that share the SQLite study (forked after the data is prepared, so they share it too)."""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from typing import TYPE_CHECKING, Any

from kiln.errors import KilnError
from kiln.tuning.study import (
    INTERRUPTED,
    STUDY_NAME,
    close_storage,
    load_study,
    open_storage,
    optuna,
)
from kiln.tuning.trial import SearchError, TrialFailed, improves

if TYPE_CHECKING:
    from kiln.tuning.search import Search


def run_local(search: Search, remaining: int, offset: int) -> None:
    """Run `remaining` more trials; `offset` (trials already in the study) shifts the sampler seed."""
    if remaining <= 0:
        return
    workers = min(search.tune.parallel, remaining)
    if workers > 1:
        # Enqueued trials (the base config; trials a resume queues again) run here first: on SQLite two
        # workers can both read a WAITING trial and both mark it RUNNING (pysqlite begins no transaction
        # for the read), so both ran the base trial and the second failed with "Cannot tell a COMPLETE trial".
        first = min(_queued(search), remaining)
        if first:
            _work(search, first, offset, search.deadline)
            remaining -= first
            workers = min(workers, remaining)
    if workers <= 1:
        if remaining > 0:
            _work(search, remaining, offset, search.deadline)
        return
    if search.storage is not None:
        close_storage(search.storage)  # no pooled connection crosses the fork; each worker opens its own
    context = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    errors = context.Queue()
    shares = [remaining // workers + (1 if i < remaining % workers else 0) for i in range(workers)]
    procs = [context.Process(target=_worker, args=(search, n, offset + 1000 * i, errors), daemon=False)
             for i, n in enumerate(shares)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    messages = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    if messages:
        raise KilnError(messages[0])
    if any(proc.exitcode for proc in procs):
        raise KilnError(f"a search worker process died (exit codes {[p.exitcode for p in procs]}); "
                        "resume the search with --resume")


def _queued(search: Search) -> int:
    """How many trials wait in the study's queue (enqueued, not started)."""
    storage = search.storage or open_storage(search.directory)
    try:
        study = optuna().load_study(study_name=STUDY_NAME, storage=storage)
        return len(study.get_trials(deepcopy=False, states=(optuna().trial.TrialState.WAITING,)))
    finally:
        if storage is not search.storage:
            close_storage(storage)


def _worker(search: Search, trials: int, offset: int, errors: Any) -> None:
    search.storage = None
    try:
        _work(search, trials, offset, search.deadline)
    except KilnError as exc:
        errors.put(str(exc))
        sys.exit(2)


def _work(search: Search, trials: int, offset: int, deadline: float | None) -> None:
    """Run trials one after another in this process (a worker process: its share of a parallel search)."""
    storage = search.storage or open_storage(search.directory)  # the search's own, unless a worker
    study = load_study(storage, search.tune, search.runner.space, offset, one_process=search.tune.parallel == 1)
    pruned = optuna().TrialPruned
    runner = search.runner
    leader: list[Any] = []  # this process's best trial so far: its plots and report.html are written once, at the end

    def objective(trial: Any) -> float:
        values = runner.space.suggest(trial)
        trial.set_user_attr("values", values)

        def report(value: float, step: int) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise pruned(f"pruned after {step} {search.unit}s")

        try:
            result = runner.run(trial.number, values, report, (pruned,))
        except (TrialFailed, SearchError) as exc:
            trial.set_user_attr("error", str(exc))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)  # not counted; --resume runs its values again
            trial.set_user_attr("error", "interrupted: the search was stopped during this trial")
            raise
        trial.set_user_attr("rounds", result.rounds)
        if improves(result.value, _best_value(trial.study), search.tune.direction):
            leader[:] = [result]
        return result.value

    def after(study: Any, trial: Any) -> None:
        if search.progress:  # the trials are read (a SQL round trip) only for the progress line
            search.print_trial(study.get_trials(deepcopy=False), trial)

    timeout = None if deadline is None else max(0.0, deadline - time.time())
    try:
        study.optimize(objective, n_trials=trials, timeout=timeout, catch=(TrialFailed,), callbacks=[after])
    finally:
        if storage is not search.storage:
            close_storage(storage)
        for result in leader:
            result.write_report()


def _best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:  # no complete trial yet
        return None
