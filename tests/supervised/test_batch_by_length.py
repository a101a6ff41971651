"""`data.batch_by_length`: batches of rows of similar token count, every row once per epoch, seeded."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import kiln
from kiln.api import load_task_config
from kiln.errors import KilnError
from kiln.supervised.task import length_grouped


def test_length_grouped_keeps_every_row_and_groups_lengths() -> None:
    lengths = torch.randint(1, 60, (1000,), generator=torch.Generator().manual_seed(0))
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(1))
    grouped = length_grouped(order, lengths, 10, torch.Generator().manual_seed(2))
    assert sorted(grouped.tolist()) == list(range(1000))
    spread = lambda o: float(torch.stack([lengths[b].max() - lengths[b].min() for b in o.split(10)]).float().mean())  # noqa: E731
    assert spread(grouped) < 0.25 * spread(order)
    again = length_grouped(order, lengths, 10, torch.Generator().manual_seed(2))
    assert torch.equal(grouped, again)


def test_trains_a_text_model_and_refuses_without_text(tmp_path) -> None:
    frame = pd.DataFrame({"t": ["good fun film here", "bad", "great", "awful boring dull plot twist"] * 10, "y": [1, 0, 1, 0] * 10})
    config = {"input_features": [{"name": "t", "type": "text", "max_length": 8}], "output_features": [{"name": "y", "type": "binary"}],
              "model": {"type": "cnn", "embedding_dim": 4, "text_filters": 3, "text_kernel_sizes": [1, 2]},
              "data": {"batch_by_length": True}, "trainer": {"epochs": 2, "batch_size": 8}}
    model = kiln.train(config, data=frame, output=tmp_path / "run")
    assert len(model.history) == 2
    with pytest.raises(KilnError, match="batch_by_length needs a text input"):
        kiln.train({**config, "input_features": [{"name": "y2", "type": "numeric"}], "model": {"type": "mlp"}},
                   data=frame.assign(y2=range(len(frame))), output=tmp_path / "run2")


def test_refused_with_streaming() -> None:
    with pytest.raises(KilnError, match="batch_by_length"):
        load_task_config({"data": {"train": "x.csv", "streaming": True, "batch_by_length": True},
                          "input_features": [{"name": "t", "type": "text"}], "output_features": [{"name": "y", "type": "binary"}]})
