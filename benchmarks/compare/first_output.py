"""Where kiln's time to first output goes: one fresh process, each step timed in order.

The harness's ready mark for kiln is `on_train_begin` (imported, data loaded, split and preprocessed,
network and optimizer built). This script takes the heavy imports one at a time first — torch, pandas,
the rest of `kiln.api`, scikit-learn's model_selection (kiln's split imports it), torch._dynamo (the
first torch optimizer imports it) — then runs `kiln.train` on the config up to `on_train_begin`, so the
last line is what remains: reading, splitting, preprocessing and building the network.

    .venv/bin/python benchmarks/compare/first_output.py examples/titanic.yaml [SAMPLE, e.g. 0.1]
"""

from __future__ import annotations

import sys
import time

START = time.perf_counter()
_last = [START]


def lap(step: str) -> None:
    now = time.perf_counter()
    print(f"{step:70s}{now - _last[0]:7.2f} s", flush=True)
    _last[0] = now


def main() -> None:
    import torch

    lap("import torch")
    import pandas  # noqa: F401

    lap("import pandas")
    import kiln.api
    from kiln.config import raw_config
    from kiln.training import Callback

    lap("import kiln.api (kiln, pydantic, rich, ...)")
    import sklearn.model_selection  # noqa: F401

    lap("import sklearn.model_selection (kiln's split)")
    torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    lap("first torch optimizer (imports torch._dynamo)")

    class Stop(Exception):
        pass

    class Ready(Callback):
        def on_train_begin(self, trainer) -> None:  # noqa: ANN001
            raise Stop

    config = raw_config(sys.argv[1])
    if len(sys.argv) > 2:  # the fraction of rows, as the harness's sst2_10 sets data.sample
        config["data"]["sample"] = float(sys.argv[2])
    try:
        kiln.api.train(config, output="runs/first-output", progress=False, callbacks=[Ready()])
    except Stop:
        pass
    lap("kiln.train to on_train_begin (read, split, preprocess, build)")
    print(f"{'total (from the first line of this script to on_train_begin)':70s}{_last[0] - START:7.2f} s")


if __name__ == "__main__":
    main()
