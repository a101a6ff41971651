"""Bad checkpoints, configs and installs: one line naming the path and what was expected."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import kiln
from kiln.supervised.config import load_supervised_config
from kiln.errors import KilnError


def one_line(result: tuple[int, str, str], *facts: str) -> str:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    for fact in facts:
        assert fact in lines[0], (fact, lines[0])
    return lines[0]


def train_error(config: dict[str, Any], tmp_path: Path) -> str:
    with pytest.raises(KilnError) as info:
        kiln.train(config, output=tmp_path / "run")
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_checkpoint_dir_cli(cli, hf_config, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(hf_config(tmp_path / "nowhere")), encoding="utf-8")
    one_line(cli("train", config, "-q", "-o", tmp_path / "run"), "Hugging Face checkpoint not found",
             str(tmp_path / "nowhere"), "save_pretrained", "never downloads")


def test_no_config_json(hf_config, bert_copy: Path, tmp_path: Path) -> None:
    (bert_copy / "config.json").unlink()
    message = train_error(hf_config(bert_copy), tmp_path)
    assert f"not a Hugging Face checkpoint: {bert_copy} has no config.json" in message


def test_not_an_encoder(hf_config, tmp_path: Path) -> None:
    import transformers

    gpt = tmp_path / "gpt"
    transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=100).save_pretrained(str(gpt))
    message = train_error(hf_config(gpt), tmp_path)
    assert f"not an encoder model: {gpt} is a 'gpt2' checkpoint" in message and "BERT-style" in message


def test_tokenizer_missing(hf_config, bert_copy: Path, tmp_path: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (bert_copy / name).unlink(missing_ok=True)
    message = train_error(hf_config(bert_copy), tmp_path)
    assert f"no tokenizer in {bert_copy}: expected tokenizer.json" in message


def test_weights_missing(hf_config, bert_copy: Path, tmp_path: Path) -> None:
    (bert_copy / "model.safetensors").unlink()
    message = train_error(hf_config(bert_copy), tmp_path)
    assert f"no weights in {bert_copy}: expected model.safetensors" in message


def test_unset_checkpoint_variable(hf_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_BERT", raising=False)
    message = train_error(hf_config("${KILN_BERT}"), tmp_path)
    assert "model.path: environment variable $KILN_BERT is not set" in message


def test_max_length_beyond_positions(hf_config, tmp_path: Path) -> None:
    config = hf_config()
    config["input_features"][0]["max_length"] = 200
    assert "longer than the 128 positions" in train_error(config, tmp_path)


@pytest.mark.parametrize(
    ("change", "fact"),
    [({"input_features": [{"name": "sentence", "type": "text", "tokenizer": "word"}]},
      "input_features[0].tokenizer: model type 'hf' tokenizes with the checkpoint's own tokenizer"),
     ({"input_features": [{"name": "sentence", "type": "text"}, {"name": "other", "type": "text"}]},
      "needs exactly one text input feature"),
     ({"model": {"type": "hf", "path": "x", "adapter": {"type": "lorra"}}}, "model.adapter.type: 'lorra' is not allowed"),
     ({"model": {"type": "hf", "path": "x", "init": "xavier"}}, "model.init: 'xavier' is not allowed; valid: default"),
     ({"model": {"type": "hf"}}, "model.path: required field is missing")],
    ids=["explicit-tokenizer", "two-texts", "adapter-type", "init", "no-path"],
)
def test_config_errors(hf_config, change: dict[str, Any], fact: str) -> None:
    with pytest.raises(KilnError, match="config error") as info:
        load_supervised_config({**hf_config(), **change})
    assert fact in str(info.value), str(info.value)


def test_missing_transformers_is_a_helpful_error(cli, hf_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # what `import transformers` does when it is not installed
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(hf_config()), encoding="utf-8")
    one_line(cli("train", config, "-q", "-o", tmp_path / "run"), "transformers is not installed", "pip install 'kiln[hf]'")


def test_other_model_types_do_not_import_transformers(tabular_config, tabular: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.setitem(sys.modules, "peft", None)
    kiln.train(tabular_config(epochs=1), output=tmp_path / "run")
    assert len(kiln.load(tmp_path / "run").predict(tabular)) == 240
