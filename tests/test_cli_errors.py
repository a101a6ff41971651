"""Every bad input: one `error: ...` line on stderr, exit code 2, no traceback.

Most cases call `kiln.cli.main` in-process (imports once); one smoke test runs the real
`python -m kiln` in a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from cli_helpers import one_line_error, run_cli
from kiln.cli import main

ROWS = 40


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "x": rng.normal(size=ROWS).round(3),
        "color": rng.choice(["red", "green", "blue"], size=ROWS),
        "review": rng.choice(["good movie", "bad film", "fine"], size=ROWS),
        "y": np.arange(ROWS) % 2,
    })


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("cli_errors")
    frame.to_csv(path / "data.csv", index=False)
    return path


def config(work: Path, **sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "data": {"train": str(work / "data.csv")},
        "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"}],
        "output_features": [{"name": "y", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [4]},
        "trainer": {"epochs": 1, "batch_size": 16},
    }
    base.update(sections)
    return base


def write(path: Path, content: dict[str, Any] | str) -> Path:
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def coerced_run(work: Path, frame: pd.DataFrame) -> tuple[Path, int, str]:
    """One tiny `kiln train` (one epoch) on data with 3 non-numeric values in numeric column x.

    Returns (run directory, exit code, stderr); the run is reused by the resume/predict/evaluate cases.
    """
    data = frame.astype({"x": object})
    data.loc[[1, 5, 9], "x"] = ["high", "abc", "?"]
    data.to_csv(work / "coerce.csv", index=False)
    out = work / "run"
    argv, stderr = sys.argv, io.StringIO()
    sys.argv = ["kiln", "train", str(write(work / "run.yaml", coerced_config(work))), "-q", "-o", str(out)]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return out, code, stderr.getvalue()


def coerced_config(work: Path, **trainer: Any) -> dict[str, Any]:
    return config(work, data={"train": str(work / "coerce.csv")}, trainer={"epochs": 1, "batch_size": 16, **trainer})


@pytest.fixture(scope="module")
def run_dir(coerced_run: tuple[Path, int, str]) -> Path:
    assert coerced_run[1] == 0, coerced_run[2]
    return coerced_run[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, work: Path):
    monkeypatch.chdir(work)
    return lambda *args: run_cli(capsys, monkeypatch, *args)


def train_with(cli, work: Path, name: str, cfg: dict[str, Any] | str, *extra: str) -> tuple[int, str, str]:
    return cli("train", write(work / name, cfg), "-q", "-o", work / f"out-{name}", *extra)


# -- 1-2: data files -----------------------------------------------------------------------------
def test_missing_data_file(cli, work: Path) -> None:
    cfg = config(work, data={"train": str(work / "nope.csv")})
    one_line_error(train_with(cli, work, "missing.yaml", cfg), "data file not found", str(work / "nope.csv"))


def test_unknown_file_extension(cli, work: Path) -> None:
    cfg = config(work, data={"train": str(work / "data.xlsx")})
    one_line_error(train_with(cli, work, "xlsx.yaml", cfg), "unknown file type '.xlsx'", ".csv", ".jsonl", ".parquet", ".tsv")


def test_missing_config_file(cli, work: Path) -> None:
    one_line_error(cli("train", work / "absent.yaml"), "config file not found", "absent.yaml")


# -- 3-4, 13: the config ---------------------------------------------------------------------------
def test_malformed_yaml_names_the_line(cli, work: Path) -> None:
    text = "data:\n  train: data.csv\n    oops: 1\ninput_features: []\n"
    one_line_error(train_with(cli, work, "bad.yaml", text), "malformed YAML", "bad.yaml", "line 3")


@pytest.mark.parametrize(
    ("sections", "facts"),
    [
        ({"trainer": {"epoch": 3}}, ["trainer.epoch", "unknown key 'epoch'", "did you mean 'epochs'"]),
        ({"trainr": {"epochs": 1}}, ["unknown key 'trainr'", "did you mean 'trainer'"]),
        ({"input_features": [{"name": "x", "type": "numerc"}]},
         ["input_features[0].type", "unknown feature type 'numerc'", "did you mean 'numeric'", "valid: audio, binary, category"]),
        ({"input_features": [{"name": "x", "type": "numeric", "normalisation": "minmax"}]},
         ["input_features[0].normalisation", "did you mean 'normalization'"]),
        ({"model": {"type": "mpl"}}, ["model.type", "unknown model type 'mpl'", "did you mean 'mlp'", "cnn", "rnn"]),
        ({"model": {"hidden": [4]}}, ["model: missing 'type'", "mlp"]),
        ({"trainer": {"optimizer": "adma"}}, ["trainer.optimizer", "'adma'", "valid: sgd, adam, adamw, rmsprop"]),
        ({"preprocessing": {"missing": {"numeric": "mode"}}}, ["preprocessing.missing.numeric", "valid: median, mean, zero"]),
        ({"trainer": {"batch_size": "all"}}, ["trainer.batch_size", "'all'", "an integer or 'full'"]),
        ({"trainer": {"device": "tpu"}}, ["trainer.device", "'tpu'", "cpu", "cuda"]),
        ({"output_features": [{"name": "review", "type": "text"}]}, ["output_features[0]", "cannot be an output"]),
    ],
    ids=["key", "section", "feature-type", "feature-key", "model-type", "model-no-type", "optimizer", "nested-literal",
         "union", "device", "text-output"],
)
def test_config_mistakes(cli, work: Path, sections: dict[str, Any], facts: list[str]) -> None:
    line = one_line_error(train_with(cli, work, "cfg.yaml", config(work, **sections)), *facts)
    assert line.startswith("error: config error")


@pytest.mark.parametrize(
    ("split", "facts"),
    [({"validation": 1.5}, ["data.split.validation", "less than 1", "1.5"]),
     ({"validation": 0.6, "test": 0.5}, ["data.split", "validation + test must be below 1"])],
    ids=["range", "sum"],
)
def test_range_errors_name_the_field(cli, work: Path, split: dict[str, float], facts: list[str]) -> None:
    cfg = config(work, data={"train": str(work / "data.csv"), "split": split})
    one_line_error(train_with(cli, work, "split.yaml", cfg), *facts)


def test_unset_environment_variable(cli, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    cfg = config(work, data={"train": "${NOPE}/x.csv"})
    one_line_error(train_with(cli, work, "env.yaml", cfg), "data.train", "$NOPE is not set", "${NOPE}/x.csv")


# -- 5-9: the data ------------------------------------------------------------------------------
def test_config_column_missing_from_data(cli, work: Path) -> None:
    cfg = config(work, input_features=[{"name": "z", "type": "numeric"}])
    one_line_error(train_with(cli, work, "col.yaml", cfg), "['z'] not found in training data", "x, color, review, y")


def test_non_numeric_values_are_coerced_and_reported(coerced_run: tuple[Path, int, str]) -> None:
    out, code, err = coerced_run
    assert code == 0, err
    assert "Traceback" not in err and "error" not in err, err
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: training data:"), err
    assert "'x' (3)" in warnings[0] and "treated as missing" in warnings[0], err
    report = json.loads((out / "data_report.json").read_text())
    assert report["train_file"]["coerced_non_numeric"] == {"x": 3}
    assert report["train_file"]["rows_used"] == ROWS  # coerced values are missing inputs, not dropped rows


def test_all_empty_column(cli, work: Path, frame: pd.DataFrame) -> None:
    frame.assign(x=np.nan).to_csv(work / "empty_col.csv", index=False)
    cfg = config(work, data={"train": str(work / "empty_col.csv")})
    one_line_error(train_with(cli, work, "emptycol.yaml", cfg), "column 'x'", "is empty", f"all {ROWS} values are missing")


def test_header_only_dataset(cli, work: Path, frame: pd.DataFrame) -> None:
    frame.head(0).to_csv(work / "header.csv", index=False)
    cfg = config(work, data={"train": str(work / "header.csv")})
    one_line_error(train_with(cli, work, "header.yaml", cfg), "training data is empty (0 rows)")


def test_empty_file(cli, work: Path) -> None:
    (work / "blank.csv").write_text("")
    cfg = config(work, data={"train": str(work / "blank.csv")})
    one_line_error(train_with(cli, work, "blank.yaml", cfg), "blank.csv", "is empty")


@pytest.mark.parametrize("label_type", ["binary", "category"])
def test_single_class_label(cli, work: Path, frame: pd.DataFrame, label_type: str) -> None:
    frame.assign(y=1).to_csv(work / "one_class.csv", index=False)
    cfg = config(work, data={"train": str(work / "one_class.csv")}, output_features=[{"name": "y", "type": label_type}])
    one_line_error(train_with(cli, work, "oneclass.yaml", cfg), "output 'y' has a single class ['1']", "at least two")


def test_too_few_rows_to_split(cli, work: Path, frame: pd.DataFrame) -> None:
    frame.head(1).to_csv(work / "one_row.csv", index=False)
    cfg = config(work, data={"train": str(work / "one_row.csv")})
    one_line_error(train_with(cli, work, "onerow.yaml", cfg), "too few rows", "data.split.test")


# -- 10: model type vs features ---------------------------------------------------------------------
def test_cnn_on_tabular_only(cli, work: Path) -> None:
    cfg = config(work, input_features=[{"name": "x", "type": "numeric"}], model={"type": "cnn"})
    one_line_error(train_with(cli, work, "cnn.yaml", cfg), "model type 'cnn' needs an image input", "['numeric']")


def test_rnn_with_image_input(cli, work: Path) -> None:
    rng = np.random.default_rng(1)
    rows = [{"img": rng.integers(0, 4, size=(2, 2)).tolist(), "y": i % 2} for i in range(ROWS)]
    (work / "img.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    cfg = config(work, data={"train": str(work / "img.jsonl")}, input_features=[{"name": "img", "type": "image"}],
                 model={"type": "rnn"})
    one_line_error(train_with(cli, work, "rnn.yaml", cfg), "model type 'rnn' needs a text input", "['image']")


# -- 11-12: run and model directories ---------------------------------------------------------------
def test_resume_with_a_different_config(cli, work: Path, run_dir: Path) -> None:
    cfg = coerced_config(work, epochs=2)
    one_line_error(cli("train", write(work / "other.yaml", cfg), "-q", "--resume", run_dir),
                   "cannot resume", str(run_dir), "trainer.epochs: 1 → 2")


def test_resume_a_non_run_directory(cli, work: Path) -> None:
    one_line_error(cli("train", write(work / "r.yaml", config(work)), "-q", "--resume", work / "nowhere"),
                   "cannot resume", "not a kiln run directory")


def test_predict_on_a_non_model_directory(cli, work: Path) -> None:
    one_line_error(cli("predict", work, work / "data.csv", "-o", work / "p.csv"), "not a kiln model directory", str(work))


def test_predict_without_an_input_column(cli, work: Path, frame: pd.DataFrame, run_dir: Path) -> None:
    frame.drop(columns=["color"]).to_csv(work / "no_color.csv", index=False)
    one_line_error(cli("predict", run_dir, work / "no_color.csv", "-o", work / "p.csv"),
                   "['color'] not found in prediction data", "x, review, y")


def test_predict_on_empty_data(cli, work: Path, frame: pd.DataFrame, run_dir: Path) -> None:
    frame.head(0).to_csv(work / "none.csv", index=False)
    one_line_error(cli("predict", run_dir, work / "none.csv", "-o", work / "p.csv"), "prediction data is empty")


def test_evaluate_without_the_label(cli, work: Path, frame: pd.DataFrame, run_dir: Path) -> None:
    frame.drop(columns=["y"]).to_csv(work / "no_label.csv", index=False)
    one_line_error(cli("evaluate", run_dir, work / "no_label.csv"), "['y'] not found in evaluation data", "x, color, review")


def test_evaluate_with_unseen_labels(cli, work: Path, frame: pd.DataFrame, run_dir: Path) -> None:
    frame.assign(y=7).to_csv(work / "unseen.csv", index=False)
    one_line_error(cli("evaluate", run_dir, work / "unseen.csv"), "labels not seen in training: ['7']", "known: ['0', '1']")


# -- command-line usage -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "facts"),
    [(["train"], ["Missing argument", "kiln train --help"]),
     (["train", "x.yaml", "--bogus"], ["No such option: --bogus"]),
     (["nosuch"], ["No such command 'nosuch'"]),
     (["cv", "x.yaml", "--folds", "many"], ["--folds"])],
    ids=["missing-arg", "bad-option", "bad-command", "bad-int"],
)
def test_usage_errors(cli, args: list[str], facts: list[str]) -> None:
    one_line_error(cli(*args), *facts)


def test_cv_with_more_folds_than_rows(cli, work: Path) -> None:
    one_line_error(cli("cv", write(work / "cv.yaml", config(work)), "--folds", "100"), "--folds 100", f"{ROWS} usable rows")


# -- the real entry points, in a subprocess -------------------------------------------------------------
def test_python_dash_m_kiln(work: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILN_THREADS": "1"}
    cfg = write(work / "sub.yaml", config(work, trainer={"epoch": 3}))
    proc = subprocess.run([sys.executable, "-m", "kiln", "train", str(cfg)], capture_output=True, text=True, env=env, timeout=120)
    one_line_error((proc.returncode, proc.stdout, proc.stderr), "unknown key 'epoch'", "did you mean 'epochs'")


ARCHITECTURE_CASES = {
    "supervised transformer": ({}, "transformer"),
    "supervised gpt": ({}, "gpt"),
    "language_modeling gpt": ({"task": "language_modeling"}, "gpt"),
    "pretraining transformer": ({"task": "pretraining"}, "transformer"),
}


@pytest.mark.parametrize("case", list(ARCHITECTURE_CASES))
def test_impossible_architecture_is_one_line_in_every_task(case, tmp_path, capsys, monkeypatch):
    task, model_type = ARCHITECTURE_CASES[case]
    table = tmp_path / "t.csv"
    table.write_text("sentence,label\n" + "the film was good,1\nthe film was bad,0\n" * 10)
    lines = tmp_path / "l.txt"
    lines.write_text("hello world\nthe cat sat\n" * 10)
    config = {**task, "model": {"type": model_type, "d_model": 30, "heads": 4}}
    if not task:
        config.update(data={"train": str(table)}, input_features=[{"name": "sentence", "type": "text"}],
                      output_features=[{"name": "label", "type": "category"}])
    else:
        config["data"] = {"train": [str(lines)] if task["task"] == "pretraining" else str(lines)}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli(capsys, monkeypatch, "train", path, "-o", tmp_path / "run")
    one_line_error(result, "config error at model", "d_model (30) must be divisible by heads (4)")
    assert not (tmp_path / "run" / "model").exists()
