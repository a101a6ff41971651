"""Where kiln's time to first output goes: one fresh process, each step timed in order.

The harness's ready mark for kiln is `on_train_begin` (imported, data loaded, split and preprocessed,
network and optimizer built). This script takes the heavy imports one at a time first — torch, pandas,
the rest of `kiln.api`, torch._dynamo (the first torch optimizer imports it) — then runs `kiln.train` on
the config up to `on_train_begin`, timing its parts (read + clean + split, fit the preprocessing, encode
the splits, build the network, save the model, the rest) by wrapping kiln's functions, so the lines add up
to what remains. kiln's split and n-gram hashing import no scikit-learn (kiln.data.splitting,
kiln.features.hashing); the last line lists the heavy modules that loaded before `on_train_begin`.

    .venv/bin/python benchmarks/compare/first_output.py examples/titanic.yaml [SAMPLE, e.g. 0.1]
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

START = time.perf_counter()
_last = [START]
HEAVY = ("sklearn", "scipy", "matplotlib", "rich", "fastapi", "uvicorn", "optuna", "transformers", "onnx", "sympy")


def lap(step: str) -> None:
    now = time.perf_counter()
    print(f"{step:70s}{now - _last[0]:7.2f} s", flush=True)
    _last[0] = now


def timed(owner: Any, name: str, spent: dict[str, float], label: str) -> None:
    """Wrap owner.name so that its time (outermost calls only) adds to spent[label]."""
    inner: Callable[..., Any] = getattr(owner, name)
    depth = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                spent[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def main() -> None:
    import kiln  # noqa: F401  (first, as the harness's worker does: light, and it sets OMP_WAIT_POLICY before torch loads)
    import torch

    lap("import torch")
    import pandas  # noqa: F401

    lap("import pandas")
    import kiln.api
    from kiln.config import raw_config
    from kiln.training import Callback

    lap("import kiln.api (kiln, pydantic, ...)")
    torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    lap("first torch optimizer (imports torch._dynamo)")

    import kiln.supervised.task as task
    from kiln.data.preprocessor import Preprocessor
    from kiln.supervised.artifact import Model

    spent: dict[str, float] = defaultdict(float)
    timed(task, "load_splits", spent, "read, clean and split")
    timed(task, "fit_preprocessor", spent, "fit the preprocessing (training split)")
    timed(Preprocessor, "transform", spent, "encode the splits as tensors")
    timed(task, "new_network", spent, "build the network")
    timed(Model, "save", spent, "save model.json (the weights come when the run ends)")

    class Stop(Exception):
        pass

    class Ready(Callback):
        def on_train_begin(self, trainer) -> None:  # noqa: ANN001
            raise Stop

    config = raw_config(sys.argv[1])
    if len(sys.argv) > 2:  # the fraction of rows, as the harness's sst2_10 sets data.sample
        config["data"]["sample"] = float(sys.argv[2])
    begin = time.perf_counter()
    try:
        kiln.api.train(config, output="runs/first-output", progress=False, callbacks=[Ready()])
    except Stop:
        pass
    whole = time.perf_counter() - begin
    for label, seconds in spent.items():
        print(f"{'  ' + label:70s}{seconds:7.2f} s")
    print(f"{'  the rest (config, run directory, trainer and optimizer)':70s}{whole - sum(spent.values()):7.2f} s")
    lap("kiln.train to on_train_begin")
    print(f"{'total (from the first line of this script to on_train_begin)':70s}{_last[0] - START:7.2f} s")
    print(f"{'  of it, this process on a CPU (less sensitive to other load)':70s}{time.process_time():7.2f} s")
    loaded = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
    print(f"heavy modules loaded by then: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
