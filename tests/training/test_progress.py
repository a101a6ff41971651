"""Off a terminal (CI logs, `| tee`, nohup) a run prints one plain, complete line per epoch, and no
line is wrapped or cut at 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def test_piped_run_prints_complete_epoch_lines(tabular_config, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tabular_config(epochs=3)))
    output = tmp_path / ("a-long-directory-name-" * 4) / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "40"}
    done = subprocess.run([sys.executable, "-m", "kiln", "train", str(config), "-o", str(output)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    for line in epochs:
        for column in ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy", "validation_f1"):
            assert f"{column} " in line, line
        assert "…" not in line and line.rstrip().endswith("s)"), line
    assert f"run directory: {output}  (report: {output / 'report.html'})" in text.splitlines()
    assert "\x1b[" not in text  # no terminal escape codes in a log
