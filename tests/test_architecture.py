"""The layer contract (pyproject.toml [tool.importlinter]) holds, and would catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kiln

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(kiln.__file__).resolve().parent


def _lint(src_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src_parent), "COLUMNS": "200"}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_import_contract_is_kept() -> None:
    done = _lint(SRC.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "kiln"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    section = copy / "config" / "section.py"
    section.write_text(section.read_text() + "\nimport kiln.training  # an upward import\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "kiln.config.section -> kiln.training" in done.stdout


def _modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.strip().splitlines()[-1].split())


def test_config_layer_and_help_do_not_load_torch() -> None:
    assert "torch" not in _modules_after("import kiln.config")
    help_run = "sys.argv = ['kiln', '--help']\nimport kiln.cli\ntry:\n    kiln.cli.main()\nexcept SystemExit:\n    pass"
    loaded = _modules_after(help_run)
    assert "torch" not in loaded and "pandas" not in loaded


LATE = {"sklearn", "matplotlib", "rich", "fastapi", "uvicorn", "optuna", "transformers", "onnx", "onnxruntime", "captum"}


def test_the_api_loads_without_scikit_learn_scipy_or_matplotlib() -> None:
    """Loading and predicting need none of them; they load when metrics or plots are computed."""
    loaded = _modules_after("import kiln.api")
    assert not loaded & (LATE | {"scipy"})


def test_training_starts_without_scikit_learn_or_reporting_libraries(tmp_path: Path) -> None:
    """Time to first output: reading, the split (stratified), hashing n-grams and building the network load
    none of them before on_train_begin (scikit-learn alone cost ~1 s; scipy.sparse loads to hash text)."""
    rows = [{"text": f"{'good fun' if i % 2 else 'bad plot'} film {i}", "x": i / 10, "y": "ab"[i % 2]} for i in range(40)]
    config = {"data": {"train": str(tmp_path / "t.csv"), "split": {"validation": 0.2, "test": 0.2}},
              "input_features": [{"name": "text", "type": "text", "encoder": "ngram", "ngram": {"buckets": 64, "char": [2, 3]}},
                                 {"name": "x", "type": "numeric"}],
              "output_features": [{"name": "y", "type": "category"}], "model": {"type": "linear"}, "trainer": {"epochs": 1}}
    code = (f"import pandas as pd\npd.DataFrame({rows!r}).to_csv({str(tmp_path / 't.csv')!r}, index=False)\n"
            "import kiln.api\nfrom kiln.training import Callback\nclass Ready(Callback):\n"
            "    def on_train_begin(self, trainer):\n        raise SystemExit(0)\n"
            f"try:\n    kiln.api.train({config!r}, output={str(tmp_path / 'run')!r}, callbacks=[Ready()])\n"
            "except SystemExit:\n    pass")
    assert not _modules_after(code) & LATE


def test_a_classification_run_loads_neither_scikit_learn_scipy_nor_matplotlib(tmp_path: Path) -> None:
    """Accuracy, F1 and ROC AUC over a split come from kiln's own counts and ranks, and the run's charts
    are kiln's own SVG: a classification run that trains, validates, tests and writes its run directory
    loads none of them (scikit-learn and scipy.stats cost ~1.3 s, matplotlib and two PNGs ~0.9 s)."""
    rows = [{"x": i / 10, "z": (i * 7) % 5, "y": "ab"[(i // 3) % 2]} for i in range(60)]
    config = {"data": {"train": str(tmp_path / "t.csv"), "split": {"validation": 0.2, "test": 0.2}},
              "input_features": [{"name": "x", "type": "numeric"}, {"name": "z", "type": "numeric"}],
              "output_features": [{"name": "y", "type": "binary"}], "model": {"type": "mlp", "hidden": [4]},
              "trainer": {"epochs": 2}}
    code = (f"import pandas as pd\npd.DataFrame({rows!r}).to_csv({str(tmp_path / 't.csv')!r}, index=False)\n"
            "import kiln.api\n"
            f"model = kiln.api.train({config!r}, output={str(tmp_path / 'run')!r})\n"
            "assert model.metrics['test']['roc_auc'] is not None")
    loaded = _modules_after(code)
    assert (tmp_path / "run" / "confusion_matrix.svg").is_file() and (tmp_path / "run" / "report.html").is_file()
    assert "sklearn" not in loaded
    assert "scipy" not in loaded  # scipy.stats was ROC AUC's ranks; nothing else here needs scipy
    assert "matplotlib" not in loaded and "PIL" not in loaded
