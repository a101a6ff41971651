"""The runnable examples: every config validates and names real columns; quickstart equals digits_mlp.yaml;
the feature and model options they rely on behave as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.supervised.config import load_supervised_config
from kiln.data import as_frame, check_columns
from kiln.features import FEATURES, build_feature

FOLDER = Path(__file__).resolve().parents[1] / "examples"
SUPERVISED = ["digits_mlp", "digits_cnn", "titanic", "sms_spam", "sst2_lstm", "sst2_transformer",
              "linear_regression", "mlp_regression", "sst2_finetune", "sst2_ngram", "sst2_ngram_large", "sms_spam_ngram", "sst2_bilstm", "sst2_cnn", "sst2_ngram_cnn",
              "bert_finetune", "bert_frozen", "titanic_scale_out", "fsdd_cnn"]  # run configs (docs/examples.md); language models are tested in tests/lm
# bert_finetune and bert_frozen need a checkpoint ($KILN_BERT): only its schema and columns are checked here (the path
# stays unexpanded while the variable is unset); tests/hf trains it on a tiny checkpoint.
EXAMPLES = [FOLDER / f"{name}.yaml" for name in SUPERVISED]


def test_examples_exist():
    assert all(p.is_file() for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_config_is_valid_and_documented(path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    text = path.read_text()
    assert text.startswith("#") and "kiln train examples/" in text  # a header saying how to run it
    monkeypatch.setenv("KILN_DATA", str(data_dir))
    config = load_supervised_config(path)
    for split in ("train", "validation", "test"):
        source = getattr(config.data, split)
        if source:
            head = as_frame(source).head(5)
            check_columns(head, [f.column or f.name for f in [*config.input_features, *config.output_features]], split)


def test_pretraining_example_reads_its_sources(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from kiln.pretrain.config import load_pretrain_config
    from kiln.pretrain.data import read_examples

    monkeypatch.setenv("KILN_DATA", str(data_dir))
    path = FOLDER / "sst2_pretrain.yaml"
    assert "kiln pretrain examples/sst2_pretrain.yaml" in path.read_text()
    config = load_pretrain_config(path)
    for source in config.data.train:
        assert len(read_examples(source, config.data.text_column, limit=5)) == 5


def test_quickstart_is_digits_mlp_yaml():
    from kiln.quickstart import CONFIG

    yaml_path = next(p for p in EXAMPLES if p.stem == "digits_mlp")
    assert load_supervised_config(CONFIG).model_dump() == load_supervised_config(yaml_path).model_dump()


def _feature(spec: dict):
    return build_feature(FEATURES.get(spec["type"]).Config(**spec))


def test_image_per_pixel_normalization_standardises_each_pixel():
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 16, size=(4, 4)).astype("float32") for _ in range(50)]
    for img in images:
        img[0, 0] = 0.0  # a pixel that is blank in every image (like the digits' border)
    spec = {"name": "image", "type": "image", "normalization": "per_pixel"}
    f = _feature(spec)
    f.fit(pd.Series(images))
    out = f.transform(pd.Series(images))
    assert out.shape == (50, 1, 4, 4)
    assert torch.allclose(out.mean(0)[0, 1:, 1:], torch.zeros(3, 3), atol=1e-5)
    assert torch.allclose(out.std(0, unbiased=False)[0, 1:, 1:], torch.ones(3, 3), atol=1e-4)
    assert torch.all(out[:, 0, 0, 0] == 0)  # constant pixel: centred, not divided by zero
    clone = _feature(spec)
    clone.load_state(f.state())
    assert torch.equal(clone.transform(pd.Series(images[:3])), out[:3])


def test_text_normalize_digits_shares_number_tokens():
    f = _feature({"name": "t", "type": "text", "normalize_digits": True, "max_length": 4})
    f.fit(pd.Series(["call 0800 123", "win 5000 now"]))
    ids = f.transform(pd.Series(["call 9999", "call 1234"]))
    assert torch.equal(ids[0], ids[1]) and int(ids[0, 1]) > 1  # both numbers → the known token "0000"


def test_transformer_trims_all_padding_columns_exactly():
    from kiln.models.encoders import TextTransformerEncoder
    from kiln.models.transformer import TrimmedTextTransformer

    torch.manual_seed(0)
    trimmed = TrimmedTextTransformer(50, d_model=16, heads=4, layers=2).eval()
    full = TextTransformerEncoder(50, d_model=16, heads=4, layers=2).eval()
    full.load_state_dict(trimmed.state_dict())
    x = torch.zeros(3, 20, dtype=torch.long)
    x[0, :5], x[1, :2], x[2, :9] = torch.randint(2, 50, (5,)), 7, torch.randint(2, 50, (9,))
    assert torch.allclose(trimmed(x), full(x), atol=1e-6)
    assert trimmed(torch.zeros(2, 6, dtype=torch.long)).shape == (2, 16)
