"""`engine: ray`: the trials run on Ray Tune (a local cluster, or `tune.address`), Optuna's sampler as
its searcher, Ray's schedulers as pruners, `resources_per_trial` reserved for each trial. The prepared
data goes to Ray's object store once. Each finished trial is recorded in the same SQLite Optuna study
as the embedded engine uses, so the outputs, `--resume` and the trials table are the same."""

from __future__ import annotations

import datetime
import math
import os
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln.errors import KilnError
from kiln.tuning.study import close_storage, counted, load_study, open_storage, optuna, recover_interrupted
from kiln.tuning.trial import TrialFailed, TrialRunner

if TYPE_CHECKING:
    from kiln.tuning.search import Search

OBJECTIVE = "objective"


def import_ray() -> Any:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no Ray status tables; kiln prints a line per trial
    try:
        import ray
        import ray.tune  # noqa: F401
    except ImportError:
        raise KilnError("tune.engine ray needs Ray, which is not installed: pip install 'kiln[ray]' "
                        "(ray[tune,train]), or use engine: optuna") from None
    return ray


def connect(ray: Any, address: str | None) -> None:
    """Join the cluster at `address`, or start a local one; reuse a connection made already."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise KilnError(f"cannot connect to {where} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                        "check tune.address") from None


def check_resources(ray: Any, search: "Search") -> None:
    want = search.tune.resources_per_trial
    have = ray.cluster_resources()
    for name, key in (("cpu", "CPU"), ("gpu", "GPU")):
        asked, total = getattr(want, name), float(have.get(key, 0.0))
        if asked > total:
            raise KilnError(f"tune.resources_per_trial.{name}: each trial asks for {asked:g} {key}s but the Ray cluster has "
                            f"{total:g}; lower it or add machines to the cluster")


def run_ray_search(search: "Search", resume: bool, prepare: Callable[["Search"], None]) -> None:
    ray = import_ray()
    from ray import tune as rt
    from ray.tune.search.optuna import OptunaSearch

    from kiln.tuning.study import make_sampler

    tune = search.tune
    storage = open_storage(search.directory)
    try:
        study = load_study(storage, tune, search.space, create=not resume)
        recover_interrupted(study, storage)
        trials = study.get_trials(deepcopy=False)
        done = sum(counted(t) for t in trials)
    finally:
        close_storage(storage)
    for stale in (search.directory / "trials").glob("ray-*"):
        shutil.rmtree(stale, ignore_errors=True)  # trials of a killed Ray run that never finished
    prepare(search)
    remaining = search.target - done
    if remaining <= 0:
        return
    connect(ray, tune.address)
    check_resources(ray, search)
    mode = "min" if tune.direction == "minimize" else "max"
    base = search.base_point() if not trials else {}
    first = [base] if base and len(base) == len(tune.parameters) else None  # Ray takes only whole points
    searcher = OptunaSearch(space=search.space.distributions(), metric=OBJECTIVE, mode=mode,
                            sampler=make_sampler(tune, search.space, len(trials)), points_to_evaluate=first)
    trainable = rt.with_resources(rt.with_parameters(_trainable, runner=search.runner),
                                  {"cpu": tune.resources_per_trial.cpu, "gpu": tune.resources_per_trial.gpu})
    config = rt.TuneConfig(metric=OBJECTIVE, mode=mode, search_alg=searcher, scheduler=_scheduler(search),
                           num_samples=remaining, max_concurrent_trials=tune.parallel, time_budget_s=tune.time_budget_s,
                           reuse_actors=True)
    run = rt.RunConfig(name="ray", storage_path=str((search.directory / "ray").resolve()), verbose=0,
                       callbacks=[_recorder(search)])
    rt.Tuner(trainable, tune_config=config, run_config=run).fit()


def _scheduler(search: "Search") -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    p = search.tune.pruner
    if p.type == "median":
        return MedianStoppingRule(time_attr="training_iteration", grace_period=max(1, p.warmup_epochs),
                                  min_samples_required=max(1, p.startup_trials))
    if p.type == "asha":
        return ASHAScheduler(time_attr="training_iteration", grace_period=max(1, p.warmup_epochs),
                             reduction_factor=p.reduction_factor, max_t=10**6)
    return FIFOScheduler()


def _trainable(params: dict[str, Any], runner: TrialRunner) -> None:
    """One Ray trial: the same TrialRunner as the embedded engine; the metric is reported every round."""
    from ray import tune as rt

    name = f"ray-{rt.get_context().get_trial_id()}"

    def report(value: float, step: int) -> None:
        rt.report({OBJECTIVE: value, "round": step})

    try:
        result = runner.run(name, runner.space.decode(params), report, ())
    except TrialFailed as exc:
        rt.report({OBJECTIVE: math.nan, "failed": str(exc)})
        return
    result.write_report()
    rt.report({OBJECTIVE: result.value, "round": result.rounds, "final": 1})


def _recorder(search: "Search") -> Any:
    from ray import tune as rt

    class Recorder(rt.Callback):
        """Driver side: each finished Ray trial becomes a trial of the SQLite study, with its curve and state."""

        def __init__(self) -> None:
            self.curves: dict[str, dict[int, float]] = {}

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if "final" not in result and "failed" not in result and OBJECTIVE in result:
                self.curves.setdefault(trial.trial_id, {})[int(result["round"])] = float(result[OBJECTIVE])

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._record(trial, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._record(trial, f"the Ray trial errored ({trial.trial_id}); see {search.directory / 'ray'}")

        def _record(self, trial: Any, error: str | None) -> None:
            opt = optuna()
            state = opt.trial.TrialState
            last = trial.last_result or {}
            curve = self.curves.pop(trial.trial_id, {})
            error = last.get("failed", error)
            status = state.FAIL if error else state.COMPLETE if last.get("final") else state.PRUNED
            seconds = float(last.get("time_total_s", 0.0))
            now = datetime.datetime.now()
            space = search.space
            attrs = {"values": space.decode(trial.config), "engine": "ray", "ray_trial_id": trial.trial_id}
            if status == state.COMPLETE:
                attrs["rounds"] = int(last.get("round", 0))
            if error:
                attrs["error"] = error
            params = {k: trial.config[k] for k in space.params if k in trial.config}
            frozen = opt.trial.FrozenTrial(
                number=0, trial_id=0, state=status, value=float(last[OBJECTIVE]) if status == state.COMPLETE else None,
                values=None, datetime_start=now - datetime.timedelta(seconds=seconds), datetime_complete=now,
                params=params, distributions={k: v for k, v in space.distributions().items() if k in params},
                user_attrs=attrs, system_attrs={}, intermediate_values=curve)
            storage = open_storage(search.directory)
            try:
                study = load_study(storage, search.tune, space)
                study.add_trial(frozen)
                all_trials = study.get_trials(deepcopy=False)
                number = all_trials[-1].number
                source = search.runner.trial_dir(f"ray-{trial.trial_id}")
                if status == state.COMPLETE and source.is_dir():
                    target = search.runner.trial_dir(number)
                    shutil.rmtree(target, ignore_errors=True)
                    source.rename(target)
                else:
                    shutil.rmtree(source, ignore_errors=True)
                search.print_trial(all_trials, all_trials[-1])
            finally:
                close_storage(storage)

    return Recorder()
