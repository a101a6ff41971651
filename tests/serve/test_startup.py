"""`kiln serve` on a broken model directory: one line naming the file, exit 2, no server started."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _break(model: Path, how: str) -> str:
    """Damage a copy of a model directory; returns the file the error must name."""
    meta, weights = model / "model.json", model / "weights.safetensors"
    if how == "empty weights":
        weights.write_bytes(b"")
        return "weights.safetensors"
    if how == "garbage weights":
        weights.write_bytes(os.urandom(300))
        return "weights.safetensors"
    if how == "invalid json":
        meta.write_text('{"config": ')
        return "model.json"
    data = json.loads(meta.read_text())
    if how == "wrong-typed config":
        data["config"]["trainer"]["epochs"] = "many"
    else:  # wrong-typed preprocessing state
        data["preprocessing"] = [1]
    meta.write_text(json.dumps(data))
    return "model.json"


@pytest.mark.parametrize("how", ["empty weights", "garbage weights", "invalid json", "wrong-typed config", "wrong-typed state"])
def test_broken_model_refuses_to_start_with_one_line(run_dir: Path, tmp_path: Path, how: str) -> None:
    model = tmp_path / "broken"
    shutil.copytree(run_dir / "model", model)
    named = _break(model, how)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "kiln", "serve", str(model), "--port", "1"], capture_output=True, text=True,
                          timeout=120, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: cannot serve") and named in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "Uvicorn running" not in done.stderr
