"""kiln.io: the pickle-free state file round-trips every shape the trainer saves."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open

from kiln.io import load_state, save_state


def test_state_round_trips_and_stores_flat_rows_as_plain_json(tmp_path):
    rows = [{"epoch": i, "train_loss": 0.5 / (i + 1), "lr": 1e-3, "note": None, "ok": True} for i in range(3)]
    state = {
        "history": rows,
        "model": {"w": torch.arange(6.0).reshape(2, 3)},
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        "pair": (1, "a"),
        "looks_like_a_marker": {"__tensor__": "not a tensor", "x": 1},
    }
    path = save_state(tmp_path / "c.safetensors", state)
    back = load_state(path)
    assert back["history"] == rows
    assert torch.equal(back["model"]["w"], state["model"]["w"])
    assert list(back["optimizer"]["state"]) == [0] and float(back["optimizer"]["state"][0]["step"]) == 3.0
    assert back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert back["pair"] == (1, "a")
    assert back["looks_like_a_marker"] == state["looks_like_a_marker"]
    with safe_open(str(path), framework="pt") as handle:
        skeleton = json.loads(handle.metadata()["kiln_state"])
    stored = dict((k, v) for k, v in skeleton["__dict__"])["history"]
    assert stored["__list__"][0] == rows[0]  # a flat row of scalars is kept as it is, not walked key by key


def test_atomic_writes_get_the_mode_a_plain_open_gives(tmp_path):
    import os

    from kiln.io import write_text

    path = write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert os.stat(path).st_mode & 0o777 == os.stat(tmp_path / "b.txt").st_mode & 0o777
