"""The Python API: train → save → load → predict/evaluate, continue training, cross-validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import kiln


def test_run_directory_holds_everything(tabular_config, tmp_path):
    run = tmp_path / "run"
    kiln.train(tabular_config(), output=run)
    for name in ("model/weights.safetensors", "model/model.json", "metrics.json", "history.csv", "report.html",
                 "loss_curves.svg", "confusion_matrix.svg", "config.yaml", "checkpoint/checkpoint.safetensors"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "loss", "per_class"):
        assert key in metrics["test"]
    assert len(pd.read_csv(run / "history.csv")) == 4
    assert not list(run.rglob("*.pkl")) and not list(run.rglob("*.pt"))
    html = (run / "report.html").read_text(encoding="utf-8")
    for chart in ("loss_curves.svg", "confusion_matrix.svg"):  # both charts inline in the report
        assert (run / chart).read_text(encoding="utf-8").strip() in html


def test_save_load_gives_identical_predictions(tabular_config, tabular, tmp_path):
    model = kiln.train(tabular_config(), output=tmp_path / "run")
    frame = pd.read_csv(tabular)
    before = model.predict(frame)
    model.save(tmp_path / "saved")
    after = kiln.load(tmp_path / "saved").predict(frame)
    pd.testing.assert_frame_equal(before, after)
    assert list(after.columns) == ["y_prediction", "y_probability_0", "y_probability_1"]
    np.testing.assert_allclose(after[["y_probability_0", "y_probability_1"]].sum(axis=1), 1.0, rtol=1e-6)
    # a run directory loads too, and predictions need no label column
    again = kiln.load(tmp_path / "run").predict(frame.drop(columns=["y"]))
    pd.testing.assert_frame_equal(before, again)


def test_evaluate_matches_the_test_metrics_of_the_run(tabular_config, tmp_path):
    model = kiln.train(tabular_config(), output=tmp_path / "run")
    frames, _ = kiln.supervised.load_splits(model.config)
    scores = kiln.load(tmp_path / "run").evaluate(frames["test"])
    assert scores["accuracy"] == pytest.approx(model.metrics["test"]["accuracy"])
    assert scores["loss"] == pytest.approx(model.metrics["test"]["loss"], rel=1e-5)


def test_metrics_aggregate_over_the_whole_split_not_per_batch(tabular_config, tmp_path):
    model = kiln.train(tabular_config(eval_batch_size=7), output=tmp_path / "run")
    frames, _ = kiln.supervised.load_splits(model.config)
    preds = model.predict(frames["test"])
    truth = frames["test"]["y"].astype(str).to_numpy()
    assert model.metrics["test"]["accuracy"] == pytest.approx((preds["y_prediction"].to_numpy() == truth).mean())


def test_continue_training_on_new_data_keeps_preprocessing(tabular_config, tabular, tmp_path):
    first = kiln.train(tabular_config(), output=tmp_path / "first")
    new = pd.read_csv(tabular).sample(frac=0.5, random_state=3)
    new["x"] = new["x"] * 100  # a scaler refit on this data would differ
    second = kiln.train(tabular_config(epochs=2), data=new, from_model=tmp_path / "first" / "model", output=tmp_path / "second")
    assert second.preprocessor.state() == first.preprocessor.state()
    assert len(second.history) == 2


def test_cross_validation_reports_mean_and_std(tabular_config):
    result = kiln.cross_validate(tabular_config(epochs=2), folds=3)
    acc = result["metrics"]["accuracy"]
    assert len(acc["per_fold"]) == 3
    assert acc["mean"] == pytest.approx(np.mean(acc["per_fold"]))
    assert acc["std"] == pytest.approx(np.std(acc["per_fold"], ddof=1))


def test_train_on_a_dataframe_and_regression_metrics(tmp_path):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    cfg = {
        "input_features": [{"name": c, "type": "numeric"} for c in ["age", "bmi", "bp", "s5"]],
        "output_features": [{"name": "target", "type": "numeric"}],
        "model": {"type": "mlp", "hidden": [16]},
        "trainer": {"epochs": 3},
    }
    model = kiln.train(cfg, data=frame, output=tmp_path / "run")
    assert set(model.metrics["test"]) >= {"mse", "mae", "r2", "rmse"}
    preds = model.predict(frame.head(5))
    assert list(preds.columns) == ["target_prediction"]
    assert preds["target_prediction"].between(frame["target"].min() - 100, frame["target"].max() + 100).all()


def test_multi_output_model(tabular_config, tmp_path):
    cfg = tabular_config()
    cfg["input_features"] = cfg["input_features"][1:]
    cfg["output_features"].append({"name": "x", "type": "numeric"})
    model = kiln.train(cfg, output=tmp_path / "run")
    assert set(model.metrics["test"]) == {"y", "x"}
    assert "r2" in model.metrics["test"]["x"] and "accuracy" in model.metrics["test"]["y"]


def test_first_api_import_pauses_the_collector_then_freezes_and_reenables_it():
    """kiln.train's first touch imports torch, pandas and kiln with gc paused; afterwards gc runs again and
    the imported objects sit in the permanent generation (a fresh interpreter: this one imported kiln already)."""
    import subprocess
    import sys

    code = ("import gc, sys, kiln; assert 'torch' not in sys.modules; before = gc.get_freeze_count(); kiln.train; "
            "assert 'torch' in sys.modules and gc.isenabled() and gc.get_freeze_count() > before + 100_000, "
            "gc.get_freeze_count(); gc.disable(); kiln.load; assert not gc.isenabled()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_package_names_stay_the_api_functions_after_the_import():
    """`kiln.pretrain` is the function even though importing the API imports the kiln.pretrain subpackage."""
    import subprocess
    import sys

    for first in ("import kiln; kiln.train", "import kiln.api"):
        code = (f"{first}; import kiln.pretrain.task; "
                "assert callable(kiln.pretrain) and kiln.pretrain.__module__ == 'kiln.api', kiln.pretrain; "
                "from kiln.pretrain import task; assert task.__name__ == 'kiln.pretrain.task'")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (first, done.stderr[-2000:])
