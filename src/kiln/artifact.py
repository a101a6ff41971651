"""What every trained kiln model is (a supervised Model, a LanguageModel, a PretrainedEncoder): its
config, network, metrics, history and run directory, saved as a directory of `weights.safetensors`
+ `model.json`. `load` reads model.json once and picks the class by its `kind`."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from kiln.errors import KilnError
from kiln.io import load_tensors, read_json
from kiln.registry import Registry

WEIGHTS, META = "weights.safetensors", "model.json"
FORMAT_VERSION = 1
SUPERVISED = "supervised"  # the kind of model.json files written before `kind` was recorded for every model


class TrainedModel(ABC):
    """The base of kiln's trained artefacts. Subclasses set `kind` and implement `save` and `from_dir`."""

    kind: ClassVar[str]

    def __init__(self, config: Any, net: torch.nn.Module) -> None:
        self.config = config
        self.net = net
        self.metrics: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.run_dir: Path | None = None
        self.source_dir: Path | None = None  # the model directory it was loaded from

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> "TrainedModel":
        self.net.to(device)
        return self

    @abstractmethod
    def save(self, path: str | Path) -> Path:
        """Write the model directory (weights.safetensors + model.json)."""

    @classmethod
    @abstractmethod
    def from_dir(cls, path: Path, meta: dict[str, Any]) -> "TrainedModel":
        """Rebuild from a model directory whose model.json (`meta`) was read already."""


ARTIFACTS: Registry[type[TrainedModel]] = Registry("model kind")
F = TypeVar("F", bound=Callable[..., Any])


def saved_state_errors(method: F) -> F:
    """Wrap a model method that applies saved state (preprocessing, tokenizer): an exception other than
    KilnError there means a model.json whose state does not fit (hand-edited, corrupted): one line."""

    @functools.wraps(method)
    def wrapper(self: TrainedModel, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except KilnError:
            raise
        except (TypeError, KeyError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
            source = getattr(self, "source_dir", None)
            where = f"{source / META}: " if source is not None else ""
            text = str(exc).strip().splitlines()
            raise KilnError(f"{where}the saved model state does not fit ({type(exc).__name__}"
                            f"{': ' + text[0][:200] if text else ''})") from None

    return wrapper  # type: ignore[return-value]


def model_dir(path: str | Path) -> Path:
    """The model directory for a model directory or a run directory (which holds it in `model/`)."""
    path = Path(path)
    return path / "model" if (path / "model" / META).is_file() else path


def read_meta(path: str | Path, field: str = "model directory") -> tuple[Path, dict[str, Any]]:
    """(model directory, its model.json); one-line errors for a missing, unreadable or invalid one."""
    folder = model_dir(path)
    if (folder / META).is_file() and not (folder / WEIGHTS).is_file() and (folder.parent / "config.yaml").is_file():
        raise KilnError(f"{field}: {path} has no trained weights yet: its training run did not finish (a run writes them "
                        f"when it ends); continue it with `kiln train CONFIG --resume {folder.parent}`")
    if not (folder / META).is_file() or not (folder / WEIGHTS).is_file():
        raise KilnError(f"{field}: not a kiln model directory: {path} (expected {META} and {WEIGHTS}, or a run "
                        f"directory with model/)")
    try:
        meta = read_json(folder / META)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KilnError(f"{folder / META} is not valid JSON ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise KilnError(f"{folder / META} is not a kiln model file (expected an object with a 'config' mapping)")
    version = meta.get("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise KilnError(f"{folder / META}: format_version {version!r} is not one this kiln reads (1 to {FORMAT_VERSION}); "
                        "was it written by a newer kiln?")
    return folder, meta


def kind_of(meta: dict[str, Any]) -> str:
    kind = meta.get("kind", SUPERVISED)
    return kind if isinstance(kind, str) else repr(kind)


def load(path: str | Path) -> TrainedModel:
    """Load any saved kiln model (or the model of a run directory); the task packages must have
    registered their artefact classes (importing kiln.api does)."""
    folder, meta = read_meta(path)
    return from_dir_checked(ARTIFACTS.get(kind_of(meta)), folder, meta)


def from_dir_checked(cls: type[TrainedModel], folder: Path, meta: dict[str, Any]) -> Any:
    """`cls.from_dir` with every failure as one line naming the model directory's file."""
    try:
        model = cls.from_dir(folder, meta)
        model.source_dir = folder
        return model
    except KilnError as exc:
        if str(folder) in str(exc):
            raise
        raise KilnError(f"{folder / META}: {exc}") from None
    except (TypeError, KeyError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        text = str(exc).strip().splitlines()
        raise KilnError(f"{folder / META}: unexpected content ({type(exc).__name__}{': ' + text[0][:200] if text else ''})") from None


def load_weights(path: Path, net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """weights.safetensors of a model directory, checked against the network it must fill."""
    try:
        weights = load_tensors(path / WEIGHTS)
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise KilnError(f"{path / WEIGHTS} is not a readable safetensors file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'corrupt'})") from None
    expected = net.state_dict()
    wrong = [k for k, v in expected.items() if k not in weights or weights[k].shape != v.shape]
    extra = [k for k in weights if k not in expected]
    if wrong or extra:
        raise KilnError(f"weights in {path / WEIGHTS} do not match its config (missing or misshapen: {wrong[:3]}, "
                        f"unexpected: {extra[:3]})")
    broken = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise KilnError(f"{path / WEIGHTS} holds NaN or infinite values in {len(broken)} tensor(s) ({', '.join(broken[:3])}); "
                        "the model cannot predict: retrain it or load an earlier version")
    return weights
