"""benchmarks/tune.py with Optuna TPESampler arguments that kiln does not expose, for screening them
(docs/tuning.md, "The share of good trials"). Usage::

    TPE_EXTRA='{"prior_weight": 2.0}' .venv/bin/python -u benchmarks/tune_tpe_args.py --arms pruned [tune.py's options]

TPE_EXTRA: JSON of TPESampler keyword arguments, over kiln's; "gamma_fraction": f becomes
gamma(n) = min(ceil(f * n), 25) (what tune.sampler.good_fraction now does). TUNE_RUNNING_BEST=1: each
trial reports its best validation loss so far to the pruner instead of the epoch's (minimising metrics).
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tune  # noqa: E402  (benchmarks/tune.py)

warnings.filterwarnings("ignore", category=FutureWarning)  # Optuna 4.9 deprecated most of these arguments
EXTRA = json.loads(os.environ.get("TPE_EXTRA", "{}"))
if "gamma_fraction" in EXTRA:
    fraction = EXTRA.pop("gamma_fraction")
    EXTRA["gamma"] = lambda n: min(math.ceil(fraction * n), 25)


class TPE(optuna.samplers.TPESampler):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**{**kwargs, **EXTRA})


def running_best() -> None:
    from kiln.tuning import trial

    plain = trial.MetricReporter.on_round_end

    def on_round_end(self, trainer, row):  # type: ignore[no-untyped-def]
        report, best = self.report, getattr(self, "best_so_far", math.inf)

        def lowest(value: float, rounds: int) -> None:
            self.best_so_far = min(best, value)
            report(self.best_so_far, rounds)

        self.report = lowest
        try:
            plain(self, trainer, row)
        finally:
            self.report = report

    trial.MetricReporter.on_round_end = on_round_end


if __name__ == "__main__":
    optuna.samplers.TPESampler = TPE
    if os.environ.get("TUNE_RUNNING_BEST") == "1":
        running_best()
    sys.exit(tune.main(sys.argv[1:]))
