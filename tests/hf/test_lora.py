"""LoRA adapters (peft): the base stays untouched, only adapter and head learn and are saved, the base
checkpoint is verified by sha256 on load, and merge-adapter gives the same predictions without peft."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

import kiln
from kiln.errors import KilnError
from kiln.io import read_json
from kiln.models.hf import _encoder

LORA = {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["query", "value"]}


def probabilities(model: Any, data: Any) -> np.ndarray:
    preds = model.predict(data)
    return preds[[c for c in preds.columns if "_probability_" in c]].to_numpy(dtype="float64")


def one_line(result: tuple[int, str, str], *facts: str) -> str:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for fact in facts:
        assert fact in lines[0], (fact, lines[0])
    return lines[0]


def lora_config(hf_config, checkpoint: Path | None = None, epochs: int = 3) -> dict[str, Any]:
    return hf_config(checkpoint, pooling="mean", dropout=0.0, adapter=LORA, trainer={"epochs": epochs, "learning_rate": 1e-2})


@pytest.fixture(scope="module")
def lora_run(hf_config, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    run = tmp_path_factory.mktemp("lora") / "run"
    return kiln.train(lora_config(hf_config), output=run), run


def test_only_adapter_and_head_are_trainable(lora_run) -> None:
    model, _ = lora_run
    trainable = [name for name, p in model.net.named_parameters() if p.requires_grad]
    frozen = [name for name, p in model.net.named_parameters() if not p.requires_grad]
    assert any(".lora_A." in n for n in trainable) and any(".lora_B." in n for n in trainable)
    assert all(".lora_" in n or n.startswith(("heads.", "trunk.")) for n in trainable), trainable
    assert all(".lora_" not in n for n in frozen) and len(frozen) > len(trainable)
    assert losses_fell(model.history)


def losses_fell(history: list[dict[str, Any]]) -> bool:
    return history[-1]["train_loss"] < history[0]["train_loss"]


def test_base_weights_stay_bit_for_bit(lora_run, tiny_bert: Path) -> None:
    import transformers

    model, _ = lora_run
    original = transformers.AutoModel.from_pretrained(str(tiny_bert), local_files_only=True).state_dict()
    base = _encoder(model.net).backbone.get_base_model().state_dict()
    after = {k.replace(".base_layer.", "."): v for k, v in base.items() if ".lora_" not in k}
    assert set(after) == set(original)
    assert all(torch.equal(after[k], original[k]) for k in original)


def test_model_dir_holds_adapter_head_and_base_hash(lora_run, tiny_bert: Path) -> None:
    _, run = lora_run
    weights = run / "model" / "weights.safetensors"
    with safe_open(str(weights), "pt") as handle:
        keys = list(handle.keys())
    assert keys and all(".lora_" in k or k.startswith(("heads.", "trunk.")) for k in keys), keys
    assert weights.stat().st_size < (tiny_bert / "model.safetensors").stat().st_size / 4
    base = read_json(run / "model" / "model.json")["base_checkpoint"]
    digest = hashlib.sha256((tiny_bert / "model.safetensors").read_bytes()).hexdigest()
    assert base == {"path": str(tiny_bert), "sha256": {"model.safetensors": digest}}


def test_lora_save_load_gives_identical_predictions(lora_run, sentiment: Path) -> None:
    model, run = lora_run
    assert np.array_equal(probabilities(kiln.load(run), sentiment), probabilities(model, sentiment))


def test_merge_adapter_predicts_the_same_without_peft(lora_run, cli, sentiment: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    model, run = lora_run
    assert any(float(p.detach().abs().max()) > 0 for n, p in model.net.named_parameters() if ".lora_B." in n)  # active
    code, out, err = cli("merge-adapter", run, "--output", tmp_path / "merged")
    assert code == 0, err
    meta = read_json(tmp_path / "merged" / "model.json")
    assert meta["config"]["model"]["adapter"] is None and "hf_architecture" in meta
    assert (tmp_path / "merged" / "stats.json").is_file()
    with safe_open(str(tmp_path / "merged" / "weights.safetensors"), "pt") as handle:
        assert not any(".lora_" in k or "base_layer" in k for k in handle.keys())
    monkeypatch.setitem(sys.modules, "peft", None)  # the merged model must load without peft
    merged = kiln.load(tmp_path / "merged")
    assert np.allclose(probabilities(merged, sentiment), probabilities(model, sentiment), atol=1e-5)
    one_line(cli("merge-adapter", run, "--output", tmp_path / "merged"), "must be a new or empty directory")


def test_changed_or_missing_base_checkpoint(hf_config, bert_copy: Path, new_checkpoint, cli, sentiment: Path,
                                           tmp_path: Path) -> None:
    kiln.train(lora_config(hf_config, bert_copy, epochs=1), output=tmp_path / "run")
    other = new_checkpoint(tmp_path / "other", seed=1)
    shutil.copy2(other / "model.safetensors", bert_copy / "model.safetensors")
    with pytest.raises(KilnError, match="has changed") as info:
        kiln.load(tmp_path / "run")
    assert "\n" not in str(info.value)
    one_line(cli("predict", tmp_path / "run", sentiment, "-o", tmp_path / "p.csv"),
             "base checkpoint of the LoRA model", "has changed", str(bert_copy), "model.safetensors")
    shutil.rmtree(bert_copy)
    one_line(cli("predict", tmp_path / "run", sentiment, "-o", tmp_path / "p.csv"), "is missing", str(bert_copy))


def test_missing_peft_is_a_helpful_error(hf_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(KilnError, match=r"peft is not installed\): pip install 'kiln\[hf\]'") as info:
        kiln.train(lora_config(hf_config), output=tmp_path / "run")
    assert "\n" not in str(info.value)


def test_unknown_target_modules(hf_config, tmp_path: Path) -> None:
    config = hf_config(adapter={**LORA, "target_modules": ["q_proj"]})
    with pytest.raises(KilnError, match=r"target_modules \['q_proj'\] match no layer of .*; its linear layers: dense, key, query, value"):
        kiln.train(config, output=tmp_path / "run")
