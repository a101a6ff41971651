"""The search space: each parameter is a `--set` path into the task's config. Paths and ranges are
checked against the task's schema before any trial runs (one line, with "did you mean")."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from kiln.config import set_path
from kiln.errors import KilnError
from kiln.tuning.config import ChoiceParam, FloatParam, IntParam, TuneConfig

SCALAR = (str, int, float, bool, type(None))


def choice_labels(param: ChoiceParam) -> list[Any]:
    """What the sampler sees for each value: the value itself when every value is a scalar, else its JSON."""
    if all(isinstance(v, SCALAR) for v in param.values):
        return list(param.values)
    return [json.dumps(v, separators=(", ", ": ")) for v in param.values]


class SearchSpace:
    def __init__(self, tune: TuneConfig) -> None:
        self.params = tune.parameters

    # -- values ---------------------------------------------------------------------------------
    def suggest(self, trial: Any) -> dict[str, Any]:
        """One point from an Optuna trial: {path: config value}. Paths are sampled in sorted order, so the
        same seed gives the same trials whatever the order of the keys in the config."""
        values: dict[str, Any] = {}
        for path, p in sorted(self.params.items()):
            if isinstance(p, FloatParam):
                values[path] = trial.suggest_float(path, p.low, p.high, log=p.log, step=p.step)
            elif isinstance(p, IntParam):
                values[path] = trial.suggest_int(path, p.low, p.high, step=p.step, log=p.log)
            else:
                values[path] = trial.suggest_categorical(path, choice_labels(p))
        return self.decode({path: values[path] for path in self.params})

    def distributions(self) -> dict[str, Any]:
        """The space as Optuna distributions (for Ray Tune's Optuna searcher and for recording Ray trials)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for path, p in self.params.items():
            if isinstance(p, FloatParam):
                out[path] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
            elif isinstance(p, IntParam):
                out[path] = IntDistribution(p.low, p.high, log=p.log, step=p.step)
            else:
                out[path] = CategoricalDistribution(choice_labels(p))
        return out

    def decode(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """Sampler values (choice labels) → config values."""
        out = dict(sampled)
        for path, p in self.params.items():
            if isinstance(p, ChoiceParam) and path in out:
                labels = choice_labels(p)
                out[path] = p.values[labels.index(out[path])] if out[path] in labels else out[path]
        return out

    def base_point(self, raw: dict[str, Any], config: Any) -> dict[str, Any]:
        """The base config's own value of each parameter that lies inside the space, as the sampler sees it
        (choice labels): the search's first trial (`tune.start_from_base`). `raw` is the config as written,
        `config` the validated one (its defaults fill the keys `raw` leaves out)."""
        loaded = config.model_dump(mode="json") if hasattr(config, "model_dump") else {}
        point: dict[str, Any] = {}
        for path, p in self.params.items():
            for source in (raw, loaded):
                found, value = _lookup(source, path)
                if found:
                    label = _inside(p, value)
                    if label is not _OUTSIDE:
                        point[path] = label
                    break
        return point

    def grid(self) -> dict[str, list[Any]]:
        """Every point of each parameter, for the grid sampler (floats need a step)."""
        grid: dict[str, list[Any]] = {}
        for path, p in self.params.items():
            if isinstance(p, ChoiceParam):
                grid[path] = choice_labels(p)
            elif isinstance(p, IntParam):
                grid[path] = list(range(p.low, p.high + 1, p.step))
            elif p.step is None:
                raise KilnError(f"tune.parameters.{path}: the grid sampler needs a step for a float parameter "
                                "(or use type: choice)")
            else:
                count = int(math.floor((p.high - p.low) / p.step + 1e-9)) + 1
                grid[path] = [round(p.low + i * p.step, 12) for i in range(count)]
        return grid

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    @staticmethod
    def apply(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """The raw config with each searched path set (the same code as `--set`)."""
        out = copy.deepcopy(raw)
        for path, value in values.items():
            out = set_path(out, path, copy.deepcopy(value), "tune.parameters:")
        return out

    # -- checks before any trial -----------------------------------------------------------------
    def check(self, raw: dict[str, Any], load_config: Any) -> None:
        """Every path exists and every edge of every range validates in the task's config."""
        for path, p in self.params.items():
            for value in self._probes(p):
                try:
                    load_config(self.apply(raw, {path: value}))
                except KilnError as exc:
                    raise KilnError(_explain(path, value, str(exc))) from None

    @staticmethod
    def _probes(p: Any) -> list[Any]:
        if isinstance(p, ChoiceParam):
            return list(p.values)
        return [p.low, p.high]


_OUTSIDE = object()


def _lookup(tree: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False, None
        tree = tree[part]
    return True, tree


def _inside(p: Any, value: Any) -> Any:
    """`value` as the sampler's value of parameter `p`, or _OUTSIDE when the space does not hold it."""
    if isinstance(p, ChoiceParam):
        key = json.dumps(value, sort_keys=True)
        matches = [i for i, v in enumerate(p.values) if json.dumps(v, sort_keys=True) == key]
        return choice_labels(p)[matches[0]] if matches else _OUTSIDE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not p.low <= value <= p.high:
        return _OUTSIDE
    if isinstance(p, IntParam):
        return int(value) if value == int(value) and (int(value) - p.low) % p.step == 0 else _OUTSIDE
    if p.step is not None and abs((value - p.low) / p.step - round((value - p.low) / p.step)) > 1e-9:
        return _OUTSIDE
    return float(value)


def _explain(path: str, value: Any, message: str) -> str:
    """`tune.parameters: <where>: <what>`, naming the value when the error is elsewhere in the config."""
    if message.startswith("tune.parameters"):
        return message
    reason = message.removeprefix("config error at ").removeprefix("config error: ")
    where = reason.split(":", 1)[0]
    if path == where or path.startswith(where + "."):
        return f"tune.parameters: {reason}"
    return f"tune.parameters: {path} = {json.dumps(value)} makes the config invalid: {reason}"
