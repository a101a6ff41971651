"""Training progress: a live bar on a terminal; one plain, complete line per round elsewhere
(CI logs, `| tee`, nohup), so nothing is cut to the terminal's width."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress

_SHOWN = ("train_loss", "train_accuracy", "train_mae", "validation_loss", "validation_accuracy", "validation_f1",
          "validation_r2", "validation_mae", "validation_perplexity", "tokens_per_s")


def summary(row: dict[str, Any]) -> str:
    """`train_loss 0.4412  validation_loss 0.4211 ...` for the columns worth a glance."""
    parts = []
    for key in _SHOWN:
        value = row.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{key} {value:.0f}" if key == "tokens_per_s" else f"{key} {value:.4f}")
    return "  ".join(parts)


class TrainingProgress:
    """Context manager. `mode`: "auto" (bar on a terminal, lines otherwise), "bar", "lines" or "off"."""

    def __init__(self, unit: str, total_rounds: int, total_steps: int, mode: str = "auto", stream: TextIO | None = None) -> None:
        self.unit, self.total_rounds, self.total_steps = unit, total_rounds, total_steps
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.every = max(1, total_steps // 200)
        self.bar: Progress | None = None
        self.task: Any = None
        if mode == "bar":  # rich.progress loads only for a bar (a third of a second at import)
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from kiln.console import console

            self.bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"), console=console(file=self.stream),
            )

    def __enter__(self) -> "TrainingProgress":
        if self.bar is not None:
            self.bar.__enter__()
            self.task = self.bar.add_task("training", total=self.total_steps, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def start(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def advance(self, step: int, running_loss: Any) -> None:
        """After optimizer step `step` (1-based); `running_loss` is read only when the bar redraws."""
        if self.bar is not None and (step % self.every == 0 or step == self.total_steps):
            self.bar.update(self.task, completed=step, description=f"{self.unit}s", info=f"loss {float(running_loss()):.4f}")

    def end_round(self, round_: int, row: dict[str, Any]) -> None:
        label = f"{self.unit} {row.get(self.unit, round_)}/{self.total_rounds if self.unit == 'epoch' else self.total_steps}"
        if self.bar is not None:
            self.bar.update(self.task, info=summary(row))
            self.bar.console.print(f"{label}  {summary(row)}", highlight=False, soft_wrap=True)
        elif self.mode == "lines":
            seconds = row.get("epoch_time") or row.get("round_time")
            timing = f"  ({seconds:.2f}s)" if isinstance(seconds, float) else ""
            self.stream.write(f"{label}  {summary(row)}{timing}\n")
            self.stream.flush()
