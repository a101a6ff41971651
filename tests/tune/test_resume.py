"""A search killed with SIGKILL resumes with --resume and finishes the same number of trials, keeping the completed ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

import kiln


def test_kill_9_then_resume_finishes_the_same_number_of_trials(config_for, tmp_path):
    cfg = config_for(trials=4, pruner={"type": "none"})
    cfg["trainer"]["epochs"] = 20  # each trial lasts a while, so the kill lands inside one
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "search"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILN_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kiln.cli", "tune", str(path), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    done: list[str] = []
    deadline = time.time() + 240
    while len(done) < 2 and time.time() < deadline:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "the search ended before it could be killed"
        if line.startswith("trial "):
            done.append(line)
    time.sleep(0.3)  # inside the third trial
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(done) == 2 and not (out / "trials.csv").exists()

    result = kiln.tune(path, output=out, resume=True)
    trials = result.trials
    finished = trials[trials["state"].isin(["complete", "pruned", "failed"])]
    assert len(finished) == 4  # the same total as an uninterrupted search
    assert (trials["state"] == "interrupted").sum() <= 1
    before = {int(line.split()[1]): float(line.split("validation.loss ")[1].split()[0]) for line in done}
    for number, value in before.items():  # completed trials are kept, not re-run
        row = trials[trials["trial"] == number].iloc[0]
        assert row["state"] == "complete" and f"{row['validation.loss']:.4g}" == f"{value:.4g}"
    assert (out / "best" / "model" / "model.json").is_file()


def test_resume_refuses_a_changed_config_and_a_fresh_start_refuses_an_existing_search(config_for, tmp_path):
    from cli_helpers import one_line_error  # noqa: F401  (errors are KilnError lines; the CLI form is tested elsewhere)

    cfg = config_for(trials=1)
    out = tmp_path / "search"
    kiln.tune(cfg, output=out)
    try:
        kiln.tune(cfg, output=out)
        raise AssertionError("a second search in the same directory must be refused")
    except kiln.KilnError as exc:
        assert "--resume" in str(exc)
    changed = {**cfg, "trainer": {**cfg["trainer"], "epochs": 9}}
    try:
        kiln.tune(changed, output=out, resume=True)
        raise AssertionError("resuming with another config must be refused")
    except kiln.KilnError as exc:
        assert "trainer.epochs: 3 → 9" in str(exc)
    more = {**cfg, "tune": {**cfg["tune"], "trials": 2}}  # more trials is a fine reason to resume
    assert len(kiln.tune(more, output=out, resume=True).trials) == 2
    assert not Path(out / ".best.tmp").exists()
