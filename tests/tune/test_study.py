"""The study's storage and pruner: SQLite in write-ahead-log mode from the first connection, and the
one-process median pruner deciding exactly as Optuna's while reading the complete trials once per trial."""

from __future__ import annotations

import pickle

import optuna
import pytest

from kiln.tuning.study import DB, OneProcessMedian, close_storage, open_storage

CURVES = [[1.0, 0.9, 0.8, 0.7], [2.0, 1.9, 1.8, 1.7], [0.5, 0.4, 0.3, 0.2], [3.0, 3.5, 4.0, 4.5],
          [0.9, 0.7, 0.6, 0.5], [1.5, 1.2, 1.1, 1.0], [0.8, 1.6, 2.4, 3.2], [0.6, 0.5, 0.45, 0.4]]


def test_a_new_storage_commits_in_write_ahead_log_mode_and_pickles(tmp_path):
    storage = open_storage(tmp_path, new=True)
    with storage.engine.connect() as connection:  # every pooled connection: the tables were created this way too
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    optuna.create_study(storage=storage, study_name="kiln")
    close_storage(storage)
    again = open_storage(tmp_path)  # an existing file: Optuna's schema check runs
    assert optuna.load_study(storage=again, study_name="kiln").trials == []
    assert pickle.loads(pickle.dumps(again)).engine.url.database == str((tmp_path / DB).resolve())
    close_storage(again)


def _search(pruner: optuna.pruners.BasePruner) -> tuple[list[tuple[str, dict[int, float]]], int]:
    """Trials reporting CURVES one after another; their states and reports, and the pruner's study reads."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)
    reads = 0
    original = study.get_trials

    def counting(*args, **kwargs):
        nonlocal reads
        reads += 1
        return original(*args, **kwargs)

    study.get_trials = counting

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        curve = CURVES[trial.number]
        for step, value in enumerate(curve, 1):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return curve[-1]

    study.optimize(objective, n_trials=len(CURVES))
    return [(t.state.name, t.intermediate_values) for t in study.trials], reads


@pytest.mark.parametrize("startup, warmup", [(1, 0), (2, 1), (3, 2)])
def test_the_one_process_median_prunes_the_same_trials_reading_once_per_trial(startup, warmup):
    median = lambda: optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)  # noqa: E731
    expected, reads_each_epoch = _search(median())
    got, reads_once = _search(OneProcessMedian(median()))
    assert got == expected and any(state == "PRUNED" for state, _ in got)
    reports = sum(len(values) for _, values in got)
    assert reads_each_epoch - reads_once == reports - len(CURVES)  # one read per trial instead of one per report
