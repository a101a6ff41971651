"""What a supervised run writes before training: model.json with the fitted preprocessing (a resume reads it),
and no weights until the run ends (the untrained network is not a model to load)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kiln
from kiln.training import Callback


class _Seen(Callback):
    """The model directory's files when training began."""

    def on_train_begin(self, trainer: Any) -> None:
        self.files = sorted(p.name for p in (self.run / "model").iterdir())
        self.meta = json.loads((self.run / "model" / "model.json").read_text())


def test_model_json_before_training_and_weights_at_the_end(tabular_config, tmp_path: Path) -> None:
    seen = _Seen()
    seen.run = tmp_path / "run"
    model = kiln.train(tabular_config(epochs=1), output=seen.run, callbacks=[seen])
    assert seen.files == ["model.json"]
    assert seen.meta["preprocessing"] == json.loads(json.dumps(model.preprocessor.state()))
    assert (seen.run / "model" / "weights.safetensors").is_file()
    assert kiln.load(seen.run).predict(tabular_config()["data"]["train"]).shape[0] > 0


def test_loading_an_unfinished_run_says_to_resume_it(tabular_config, tmp_path: Path) -> None:
    """A run stopped during training has model.json but no weights: loading it says so, and how to continue."""
    import pytest

    from kiln.errors import KilnError

    class Stop(Exception):
        pass

    class StopAfterFirstEpoch(Callback):
        def on_round_end(self, trainer: Any, row: dict[str, Any]) -> None:
            raise Stop

    run = tmp_path / "run"
    with pytest.raises(Stop):
        kiln.train(tabular_config(epochs=3), output=run, callbacks=[StopAfterFirstEpoch()])
    with pytest.raises(KilnError, match=r"no trained weights yet.*--resume"):
        kiln.load(run)
    kiln.train(tabular_config(epochs=3), resume=run)  # what the message says to do
    assert kiln.load(run).predict(tabular_config()["data"]["train"]).shape[0] > 0
