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


def test_the_api_loads_without_scikit_learn_scipy_or_matplotlib() -> None:
    """Loading and predicting need none of them; they load when metrics, splits or plots are computed."""
    loaded = _modules_after("import kiln.api")
    assert not loaded & {"sklearn", "scipy", "matplotlib"}
