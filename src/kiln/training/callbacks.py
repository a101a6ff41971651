"""Callbacks: code that runs at the end of every round (an epoch, or an evaluation interval).

One signature for all of them: `on_round_end(trainer, row)`, where `row` is the history row just
written. A plain function `f(trainer, row)` is a callback too. Early stopping, restoring the best
weights and the convergence check are callbacks, so every task can use them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.training.trainer import Trainer

LOWER_IS_BETTER = ("loss", "mse", "rmse", "mae", "perplexity")


class Callback:
    """Override what you need. State returned by `state_dict` is saved in checkpoints."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...

    def on_round_end(self, trainer: "Trainer", row: dict[str, Any]) -> None: ...

    def on_train_end(self, trainer: "Trainer") -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class FunctionCallback(Callback):
    def __init__(self, fn: Callable[["Trainer", dict[str, Any]], None]) -> None:
        self.fn = fn

    def on_round_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        self.fn(trainer, row)


def as_callback(obj: Callback | Callable[..., None]) -> Callback:
    return obj if isinstance(obj, Callback) else FunctionCallback(obj)


class Monitor:
    """Tracks the best value of one history column (the early-stopping metric, else validation loss,
    else training loss) and how many rounds have passed without improving on it."""

    def __init__(self, metric: str | None, mode: str = "auto", min_delta: float = 0.0, required: bool = False) -> None:
        self.metric = metric or "validation.loss"
        self.key = self.metric.replace(".", "_", 1)
        self.mode = mode if mode != "auto" else ("min" if self.key.endswith(LOWER_IS_BETTER) else "max")
        self.min_delta, self.required = min_delta, required
        self.best: float | None = None
        self.best_round = 0
        self.bad_rounds = 0
        self.improved = False

    def update(self, row: dict[str, Any], round_: int) -> None:
        key, mode = self.key, self.mode
        if key not in row:
            if self.required:
                options = ", ".join(k.replace("_", ".", 1) for k in row if k.startswith(("train_", "validation_")))
                raise KilnError(f"trainer.early_stopping.metric '{self.metric}' is not computed; valid: {options}")
            key, mode = "train_loss", "min"
        value = float(row[key])
        best = self.best
        self.improved = best is None or (value < best - self.min_delta if mode == "min" else value > best + self.min_delta)
        if self.improved:
            self.best, self.best_round, self.bad_rounds = value, round_, 0
        else:
            self.bad_rounds += 1

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_round": self.best_round, "bad_rounds": self.bad_rounds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_round, self.bad_rounds = state["best"], int(state["best_round"]), int(state["bad_rounds"])


class EarlyStopping(Callback):
    """Stop when the trainer's monitored metric has not improved for `patience` rounds."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_round_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        monitor = trainer.monitor
        if monitor.bad_rounds >= self.patience:
            trainer.request_stop(f"early_stopping ({monitor.key} did not improve for {self.patience} {trainer.unit}s)")


class RestoreBest(Callback):
    """Keep a copy of the weights of the best round (by validation metrics) and load it at the end."""

    def __init__(self) -> None:
        self.weights: dict[str, Any] | None = None

    def on_round_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        if trainer.monitor.improved and "validation_loss" in row:
            self.weights = {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}

    def on_train_end(self, trainer: "Trainer") -> None:
        if self.weights is not None:
            trainer.net.load_state_dict(self.weights)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"]


class ConvergenceCheck(Callback):
    """Stop when the training loss changes by less than `tol` from one round to the next."""

    def __init__(self, tol: float) -> None:
        self.tol = tol

    def on_round_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        history = trainer.history
        if len(history) > 1 and abs(history[-2]["train_loss"] - row["train_loss"]) < self.tol:
            trainer.request_stop(f"converged (train loss changed < {self.tol})")


def standard_callbacks(cfg: Any) -> list[Callback]:
    """The callbacks the trainer config asks for (early stopping, restore best, convergence)."""
    out: list[Callback] = []
    if cfg.restore_best:
        out.append(RestoreBest())
    if cfg.early_stopping is not None:
        out.append(EarlyStopping(cfg.early_stopping.patience))
    if cfg.convergence_tol is not None:
        out.append(ConvergenceCheck(cfg.convergence_tol))
    return out
