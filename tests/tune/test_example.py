"""examples/digits_tune.yaml: its search space checks out against the digits config (no trial is run here)."""

from __future__ import annotations

from pathlib import Path

import kiln.api  # noqa: F401  (registers the tasks)
from kiln.config import raw_config
from kiln.tuning.search import Search

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits_tune.yaml"


def test_digits_tune_example_is_a_valid_search(tmp_path):
    assert "kiln tune examples/digits_tune.yaml" in EXAMPLE.read_text()
    search = Search(raw_config(EXAMPLE), tmp_path / "search", progress=False)  # paths, ranges and choices are checked
    assert search.target == 12 and set(search.tune.parameters) == {
        "trainer.learning_rate", "trainer.batch_size", "model.hidden", "model.dropout"}
