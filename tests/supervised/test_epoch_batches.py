"""An epoch's batches (kiln.supervised.task.TableTask.round_steps): gathered a block of batches at a time
and sliced, they hold exactly the rows and values that indexing each batch gives."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import kiln.supervised.task as task_module
from kiln.data.preprocessor import TensorData
from kiln.supervised.task import TableTask


def _data(rows: int) -> TensorData:
    g = torch.Generator().manual_seed(0)
    return TensorData({"x": torch.randn(rows, 1, generator=g), "ids": torch.randint(0, 50, (rows, 7), generator=g),
                       "c": torch.randint(0, 4, (rows,), generator=g)}, {"y": torch.rand(rows, generator=g)})


@pytest.mark.parametrize("block_bytes", [task_module.BLOCK_BYTES, 1, 3000])  # one block, one batch a block, several
@pytest.mark.parametrize(("batch_size", "accumulate"), [(8, 1), (7, 2), (64, 1)])
def test_batches_are_the_order_indexed(monkeypatch: pytest.MonkeyPatch, block_bytes: int, batch_size: int, accumulate: int) -> None:
    monkeypatch.setattr(task_module, "BLOCK_BYTES", block_bytes)
    data = _data(45)
    cfg = SimpleNamespace(batch_size=batch_size, gradient_accumulation=accumulate, epochs=1, seed=3)
    task = TableTask([], data, None, cfg)
    task.device = torch.device("cpu")
    steps = list(task.round_steps(0, 0))
    assert len(steps) == task.rounds()[0]
    batches = [b for micro in steps for b in micro]
    assert all(len(micro) <= accumulate for micro in steps)
    assert torch.equal(torch.cat([b.rows for b in batches]), task.order)  # every row once, in the epoch's order
    for batch in batches:
        expected = data.take(batch.rows)
        assert len(batch) == len(batch.rows) <= batch_size
        for name in ("x", "ids", "c"):
            assert torch.equal(batch.inputs[name], expected.inputs[name]) and batch.inputs[name].dtype == expected.inputs[name].dtype
        assert torch.equal(batch.targets["y"], expected.targets["y"])
