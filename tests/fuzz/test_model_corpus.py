"""A corpus of hostile model directories and checkpoints (truncated, empty and huge-header
safetensors, bad JSON, wrong types, NaN weights, newer formats) through kiln.load, predict, evaluate,
generate and `--resume`: each is ONE KilnError line; plus hypothesis mutations of model.json."""

from __future__ import annotations

import copy
import json
import shutil
import struct
from pathlib import Path

import pytest
import torch
from _oneline import ok_or_one_line
from hypothesis import given
from hypothesis import strategies as st

import kiln
from kiln.errors import KilnError
from kiln.io import load_tensors, save_tensors

def _weights(model: Path) -> Path:
    return model / "weights.safetensors"


def _meta_edit(edit):
    def apply(model: Path) -> None:
        meta = json.loads((model / "model.json").read_text())
        edit(meta)
        (model / "model.json").write_text(json.dumps(meta))
    return apply


def _tensors_edit(edit):
    def apply(model: Path) -> None:
        tensors = load_tensors(_weights(model))
        edit(tensors)
        save_tensors(_weights(model), tensors)
    return apply


def _first(tensors: dict) -> str:
    return sorted(tensors)[0]


CORRUPTIONS = {
    "weights empty": lambda m: _weights(m).write_bytes(b""),
    "weights truncated": lambda m: _weights(m).write_bytes(_weights(m).read_bytes()[: len(_weights(m).read_bytes()) // 2]),
    "weights 7 bytes": lambda m: _weights(m).write_bytes(b"\x01\x02\x03\x04\x05\x06\x07"),
    "weights huge header": lambda m: _weights(m).write_bytes(struct.pack("<Q", 2**62) + b"{}"),
    "weights header not json": lambda m: _weights(m).write_bytes(struct.pack("<Q", 8) + b"notjson!"),
    "weights header wrong offsets": lambda m: _weights(m).write_bytes(
        struct.pack("<Q", 60) + b'{"a":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}' + b"\0" * 8),
    "weights a directory": lambda m: (_weights(m).unlink(), _weights(m).mkdir()),
    "weights missing tensor": _tensors_edit(lambda t: t.pop(_first(t))),
    "weights extra tensor": _tensors_edit(lambda t: t.update(extra=torch.zeros(2))),
    "weights wrong shape": _tensors_edit(lambda t: t.update({_first(t): torch.zeros(3, 3, 3)})),
    "weights NaN": _tensors_edit(lambda t: t.update({k: torch.full_like(v, float("nan")) for k, v in t.items() if v.is_floating_point()})),
    "weights int dtype": _tensors_edit(lambda t: t.update({k: v.to(torch.int64) for k, v in t.items()})),
    "meta empty": lambda m: (m / "model.json").write_text(""),
    "meta not json": lambda m: (m / "model.json").write_text("{not json"),
    "meta a list": lambda m: (m / "model.json").write_text("[1, 2]"),
    "meta utf-16": lambda m: (m / "model.json").write_bytes((m / "model.json").read_text().encode("utf-16")),
    "meta deep": lambda m: (m / "model.json").write_text('{"config": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "format_version 99": _meta_edit(lambda d: d.update(format_version=99)),
    "format_version string": _meta_edit(lambda d: d.update(format_version="1")),
    "kind unknown": _meta_edit(lambda d: d.update(kind="quantum")),
    "kind a list": _meta_edit(lambda d: d.update(kind=["x"])),
    "config a string": _meta_edit(lambda d: d.update(config="mlp")),
    "config model huge": _meta_edit(lambda d: d["config"].update(model={**d["config"]["model"], "d_model": 65536, "hidden": [10**6] * 3})),
    "config model bad type": _meta_edit(lambda d: d["config"].update(model={"type": 7})),
    "preprocessing missing": _meta_edit(lambda d: d.pop("preprocessing", None) or d.pop("tokenizer", None)),
    "preprocessing wrong types": _meta_edit(lambda d: d.update({k: {"x": [1, 2, 3]} for k in ("preprocessing", "tokenizer") if k in d})),
    "preprocessing null": _meta_edit(lambda d: d.update({k: None for k in ("preprocessing", "tokenizer") if k in d})),
    "nested state nulls": _meta_edit(lambda d: [v.update({kk: None for kk in v}) for k in ("preprocessing",) if isinstance(d.get(k), dict)
                                                 for v in d[k].values() if isinstance(v, dict)]),
}


def use(kind: str, model: Path, saved: dict) -> None:
    loaded = kiln.load(model)
    if kind == "tab":
        loaded.predict(saved["data"])
        loaded.evaluate(saved["data"])
    else:
        "".join(loaded.stream("the ", 3, 0.5, None, None, 1))
        loaded.evaluate(saved["text"])


@pytest.mark.parametrize("kind", ["tab", "gpt"])
@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_hostile_model_directories_are_one_line(saved, tmp_path, kind, name, tried):
    model = tmp_path / "model"
    shutil.copytree(saved[kind] / "model", model)
    CORRUPTIONS[name](model)
    tried()
    result = ok_or_one_line(lambda: use(kind, model, saved))
    assert isinstance(result, KilnError) or name in ("weights int dtype", "nested state nulls", "preprocessing wrong types"), name


CHECKPOINT_CORRUPTIONS = {name: fn for name, fn in CORRUPTIONS.items() if name.startswith("weights ") and "tensor" not in name
                          and name not in ("weights NaN", "weights int dtype", "weights wrong shape")}


@pytest.mark.parametrize("name", sorted(CHECKPOINT_CORRUPTIONS))
def test_resume_from_a_hostile_checkpoint_is_one_line(saved, tmp_path, name, tried):
    run = tmp_path / "run"
    shutil.copytree(saved["tab"], run)
    checkpoint = run / "checkpoint" / "checkpoint.safetensors"
    shutil.move(checkpoint, run / "checkpoint" / "weights.safetensors")
    CHECKPOINT_CORRUPTIONS[name](run / "checkpoint")
    shutil.move(run / "checkpoint" / "weights.safetensors", checkpoint)
    tried()
    with pytest.raises(KilnError) as info:
        kiln.train(saved["config"], output=None, resume=run)
    assert "\n" not in str(info.value)


def _json_paths(node, prefix=()):
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:5]):
            out += _json_paths(v, (*prefix, i))
    return out


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
                        st.text(max_size=8), st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(data=st.data())
def test_mutated_model_json(saved, tmp_path_factory, data, tried):
    kind = data.draw(st.sampled_from(["tab", "gpt"]))
    model = tmp_path_factory.mktemp("m") / "model"
    shutil.copytree(saved[kind] / "model", model)
    meta = json.loads((model / "model.json").read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_json_paths(meta)[1:]))
        node = meta
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = data.draw(JSON_VALUES)
    (model / "model.json").write_text(json.dumps(copy.deepcopy(meta), default=str))
    tried()
    ok_or_one_line(lambda: use(kind, model, saved))
