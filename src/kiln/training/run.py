"""A run directory's lifecycle, the same for every task: name it, check a resume against the saved
config, fix threads and seed, write config.yaml, hand out the checkpoint folder, write the run files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kiln.errors import KilnError
from kiln.evaluate.run_files import write_run_files
from kiln.io import os_error_reason, read_json, write_text
from kiln.runtime import configure_threads, seed_everything, select_device
from kiln.training.checkpoint import has_checkpoint


def config_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """`key: old → new` for every leaf that differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [d for k in keys for d in config_changes(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))]
    return [] if old == new else [f"{path}: {old!r} → {new!r}"]


class Run:
    """One run directory: `model/`, `checkpoint/`, `config.yaml` and the run files."""

    def __init__(self, config: Any, output: str | Path | None, resume: str | Path | None, name: str,
                 load_config: Callable[[Any], Any]) -> None:
        self.config = config
        self.resuming = resume is not None
        self.dir = Path(resume) if resume is not None else Path(output) if output is not None else \
            Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if self.resuming:
            self._check_resume(load_config)

    @property
    def model_dir(self) -> Path:
        return self.dir / "model"

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoint"

    def _check_resume(self, load_config: Callable[[Any], Any]) -> None:
        saved = self.dir / "config.yaml"
        if not saved.is_file():
            raise KilnError(f"cannot resume: {self.dir} is not a kiln run directory (no config.yaml)")
        changes = config_changes(load_config(saved).model_dump(mode="json"), self.config.model_dump(mode="json"))
        changes = [c for c in changes if not c.startswith("backend.")]  # any worker count resumes the same run
        if changes:
            raise KilnError(f"cannot resume {self.dir}: the config differs from the run's: {'; '.join(changes[:5])}")

    def start(self, trainer_cfg: Any) -> Any:
        """Threads and seeds from the trainer config; returns the torch device."""
        configure_threads(trainer_cfg.threads)
        seed_everything(trainer_cfg.seed)
        return select_device(trainer_cfg.device)

    def saved_meta(self) -> dict[str, Any] | None:
        """model.json written when the run started (its fitted preprocessing), when resuming."""
        meta = self.model_dir / "model.json"
        if not (self.resuming and meta.is_file()):
            return None
        try:
            return read_json(meta)
        except ValueError as exc:
            raise KilnError(f"cannot resume: {meta} is not valid JSON ({exc})") from None

    def create(self) -> None:
        """Make the directory and write config.yaml."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_text(self.dir / "config.yaml", yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False))
        except OSError as exc:
            raise KilnError(f"cannot write the run directory {self.dir}: {os_error_reason(exc, self.dir)}") from None

    @property
    def resume_from_checkpoint(self) -> bool:
        return self.resuming and has_checkpoint(self.checkpoint_dir)

    def finish(self, artifact: Any, report: dict[str, Any], x: str = "epoch", title: str = "kiln run report",
               extra_plots: Callable[[Path, Any], list[Path]] | None = None) -> None:
        artifact.run_dir = self.dir
        try:
            write_run_files(self.dir, artifact, report, x=x, title=title, extra_plots=extra_plots)
        except OSError as exc:
            raise KilnError(f"cannot write the run files in {self.dir}: {os_error_reason(exc, self.dir)}") from None


def load_run(artifact: Any, run_dir: str | Path) -> Any:
    """A finished run's artefact (`artifact.load`) with its metrics and history: what the launching
    process of a data-parallel run returns once rank 0 has written the run directory."""
    import pandas as pd

    run_dir = Path(run_dir).resolve()
    model = artifact.load(run_dir)
    model.run_dir = run_dir
    model.metrics = read_json(run_dir / "metrics.json")
    model.history = pd.read_csv(run_dir / "history.csv").to_dict("records")
    return model
