"""The benchmark scripts still run against the current code (at a token size: no timing is checked
here; `make bench` measures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, output: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--output", str(output)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(output.read_text())


def test_overhead_benchmark_runs(tmp_path: Path) -> None:
    result = _run("overhead.py", "--repeats", "1", "--epochs", "2", "--workloads", "digits", "--no-warmup",
                  output=tmp_path / "overhead.json")
    assert "digits" in json.dumps(result)


def test_tune_parts_benchmark_runs(tmp_path: Path) -> None:
    result = _run("tune_parts.py", "--trials", "3", "--epochs", "2", output=tmp_path / "tune_parts.json")
    for arm in ("pruned", "unpruned"):
        parts = result[arm]["parts"]
        assert parts["a trial's run (training and its run files)"]["calls"] == 3
        assert parts["data preparation (once a search)"]["calls"] == 1
        assert parts["opening the SQLite storage"]["calls"] >= 1 and result[arm]["wall_s"] > 0


def test_lm_benchmark_runs(tmp_path: Path, data_dir: Path) -> None:
    if not (data_dir / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip("Tiny Shakespeare not in KILN_DATA")
    result = _run("lm.py", "--iterations", "2", "--repeats", "1", output=tmp_path / "lm.json")
    assert result["training"]["tokens_per_s"] > 0


def test_text_benchmark_runs_and_reuses_cached_cells(tmp_path: Path, data_dir: Path) -> None:
    if not (data_dir / "sms_spam" / "sms_spam.tsv").is_file():
        pytest.skip("SMS spam not in KILN_DATA")
    args = ("--tasks", "sms", "--seeds", "0", "--configs", "examples/sms_spam_ngram.yaml", "--set", "trainer.epochs=1")
    result = _run("text.py", *args, output=tmp_path / "text.json")
    cells = result["cells"]
    assert {k.split("|")[2].split(" ")[0] for k in cells} == {"tfidf+lr", "examples/sms_spam_ngram.yaml"}
    assert all(0.0 <= c["metric"] <= 1.0 and c["seconds"] >= 0 for c in cells.values())
    kiln_cell = next(c for k, c in cells.items() if "sms_spam_ngram" in k)
    assert kiln_cell["epochs"] == 1 and kiln_cell["best_epoch"] == 1  # the epoch of the lowest validation loss
    again = _run("text.py", *args, output=tmp_path / "text.json")
    assert again["cells"] == cells  # nothing re-ran


def test_prune_benchmark_runs(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from deploy_models import train_tiny

    run = train_tiny("lstm", tmp_path / "tiny", epochs=2)
    result = _run("prune_sst2.py", str(run), output=tmp_path / "prune.json")
    variants = result["results"][0]["variants"]
    assert set(variants) >= {"activation (Wanda)", "reconstruct, shares spread (default)"}
    assert all(0.5 <= v["sparsity"] < 0.6 and 0.0 <= v["agreement"] <= 1.0 for v in variants.values())


def test_peak_rss_benchmark_runs(tmp_path: Path) -> None:
    if not Path("/proc/self/statm").exists():
        pytest.skip("peak_rss.py reads /proc (Linux)")
    result = _run("peak_rss.py", "examples/digits_mlp.yaml", "--epochs", "2", output=tmp_path / "rss.json")
    assert [m["at"] for m in result["marks"]] == ["train begins", "epoch 1 ends", "epoch 2 ends"]
    assert result["peak_rss_mb"] >= max(m["rss_mb"] for m in result["marks"]) > 50


def test_run_charts_benchmark_runs(tmp_path: Path) -> None:
    result = _run("run_charts.py", "--repeats", "1", output=tmp_path / "run_charts.json")
    writers = {(r["case"].split(" ")[0], r["writer"]) for r in result["results"]}
    assert writers == {(case, writer) for case in ("titanic", "digits") for writer in ("kiln SVG", "matplotlib PNG")}
    assert all(r["bytes"] > 0 and r["total_s"] > 0 for r in result["results"])
