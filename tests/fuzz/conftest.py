"""Hypothesis profiles for the fuzz suite: `ci` (the default, sized for `make test`) and `fuzz`
(`make fuzz`: KILN_FUZZ=fuzz, many more examples). Every input a fuzz test tries is counted; with
KILN_FUZZ_REPORT=path the counts per test (and tracebacks: always 0, or the test fails) go to JSON."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

import kiln

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))  # the serving tests' helpers
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _oneline

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=int(os.environ.get("KILN_FUZZ_EXAMPLES", "15")), deadline=None,
                          suppress_health_check=_QUIET, derandomize=True, print_blob=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: a failure reports at once
settings.register_profile("fuzz", max_examples=int(os.environ.get("KILN_FUZZ_EXAMPLES", "1000")), deadline=None,
                          suppress_health_check=_QUIET, print_blob=True)
settings.load_profile(os.environ.get("KILN_FUZZ", "ci"))

from _tables import clean_frame, small_config  # noqa: E402

TRIED: Counter[str] = Counter()


@pytest.fixture
def tried(request: pytest.FixtureRequest):
    """Call `tried()` once per fuzz input; counted under the test's name."""
    name = request.node.originalname or request.node.name
    return lambda n=1: TRIED.update({name: n})


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("KILN_FUZZ_REPORT")
    if target and TRIED:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps({"profile": os.environ.get("KILN_FUZZ", "ci"), "inputs": dict(TRIED),
                                            "total_inputs": sum(TRIED.values()), "failed_tests": session.testsfailed},
                                           indent=2) + "\n")


LM_TEXT = "the cat sat on the mat. a dog ran to the park!\n" * 30


@pytest.fixture(scope="session")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    clean_frame().to_csv(root / "train.csv", index=False)
    config = small_config(str(root / "train.csv"))
    config["trainer"]["epochs"] = 2
    kiln.train(config, output=root / "tab")
    (root / "text.txt").write_text(LM_TEXT)
    kiln.train({"task": "language_modeling", "data": {"train": str(root / "text.txt")}, "tokenizer": {"type": "char"},
                "model": {"type": "gpt", "layers": 1, "heads": 2, "d_model": 8, "block_size": 8},
                "trainer": {"iterations": 4, "batch_size": 2, "eval_interval": 2, "eval_iters": 1, "threads": 1}}, output=root / "gpt")
    return {"tab": root / "tab", "gpt": root / "gpt", "data": root / "train.csv", "text": root / "text.txt", "config": config}
