"""A small search end to end: outputs, the best model and config, seeding, progress lines, parallel workers."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from cli_helpers import run_cli

import kiln


@pytest.fixture(scope="module")
def searched(tmp_path_factory, config_for):
    cfg = config_for(trials=3)
    out = tmp_path_factory.mktemp("tune") / "search"
    return cfg, out, kiln.tune(cfg, output=out)


def test_outputs_of_a_search(searched, regression_csv, tmp_path, capsys, monkeypatch):
    cfg, out, result = searched
    assert {"study.db", "trials.csv", "best.yaml", "best", "report.html", "summary.json"} <= {p.name for p in out.iterdir()}
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 3 and set(table.columns) >= {"trial", "state", "validation.loss", "epochs", "trainer.learning_rate", "model.hidden"}
    summary = result.summary
    assert summary["complete"] == 3 and summary["best_value"] == pytest.approx(table["validation.loss"].min())
    assert result.best_model.history and result.best_params == summary["best_params"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 2 and "Optimisation history" in html
    # plots and report.html are written once, for the best trial only
    assert (out / "best" / "report.html").is_file() and (out / "best" / "loss_curves.svg").is_file()
    assert [p.parent.name for p in (out / "trials").glob("*/report.html")] == [f"{summary['best_trial']:04d}"]
    # best/ is a run directory like any other: kiln predict works on it
    code, stdout, err = run_cli(capsys, monkeypatch, "predict", out / "best", regression_csv, "-o", tmp_path / "preds.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "preds.csv")) == 200
    # best.yaml is ready to train, and training it gives the best trial's model again
    best_cfg = yaml.safe_load((out / "best.yaml").read_text())
    assert "tune" not in best_cfg and best_cfg["trainer"]["learning_rate"] == summary["best_params"]["trainer.learning_rate"]
    again = kiln.train(out / "best.yaml", output=tmp_path / "again")
    assert again.metrics["validation"]["loss"] == pytest.approx(summary["best_value"], rel=1e-5)


def test_same_config_and_seed_choose_the_same_trials_and_progress_is_a_line_per_trial(searched, tmp_path, capsys, monkeypatch):
    cfg, _, first = searched
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out, err = run_cli(capsys, monkeypatch, "tune", path, "-o", tmp_path / "again")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("trial ") and "done:" in line]
    assert len(lines) == 3 and all("best " in line and " | " in line for line in lines)
    assert "3/3 done: 3 complete, 0 pruned, 0 failed" in lines[-1]
    second = pd.read_csv(tmp_path / "again" / "trials.csv")
    columns = ["trainer.learning_rate", "validation.loss"]
    pd.testing.assert_frame_equal(first.trials[columns].reset_index(drop=True), second[columns], rtol=1e-6)
    assert first.trials["model.hidden"].tolist() == second["model.hidden"].tolist()


def test_parallel_workers_run_exactly_the_configured_trials(config_for, tmp_path):
    result = kiln.tune(config_for(trials=3, parallel=2), output=tmp_path / "par")
    assert len(result.trials) == 3 and result.summary["complete"] == 3
    assert sorted(result.trials["trial"]) == [0, 1, 2]
    # the enqueued base trial ran alone, before the workers started: two workers could both pop it on SQLite
    import optuna

    from kiln.tuning.study import BASE, DB, STUDY_NAME

    trials = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{tmp_path / 'par' / DB}").get_trials()
    base = [t for t in trials if t.user_attrs.get(BASE)]
    assert len(base) == 1 and base[0].number == 0
    assert all(t.datetime_start >= base[0].datetime_complete for t in trials if t.number != 0)


def test_data_is_loaded_once_for_all_trials_and_again_only_for_another_data_config(config_for, tmp_path, monkeypatch):
    import kiln.supervised.task as supervised_task

    calls: list[int] = []
    real = supervised_task.load_splits
    monkeypatch.setattr(supervised_task, "load_splits", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = config_for({"trainer.learning_rate": {"type": "choice", "values": [0.01, 0.02, 0.03]}}, trials=3,
                     sampler={"type": "grid", "seed": 0})
    cfg["trainer"]["epochs"] = 1
    kiln.tune(cfg, output=tmp_path / "a")
    assert len(calls) == 1
    calls.clear()
    cfg["tune"]["parameters"] = {"data.split.seed": {"type": "choice", "values": [3, 4]}}  # 3 is the base config's
    cfg["tune"]["trials"] = 2
    kiln.tune(cfg, output=tmp_path / "b")
    assert len(calls) == 2  # the base data, then once for seed 4
