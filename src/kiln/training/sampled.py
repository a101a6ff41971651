"""A training task over sampled examples: each optimizer step draws `batch_size *
gradient_accumulation` examples with a generator that depends only on (seed, step), and every
`eval_interval` steps the loss is estimated on fixed validation batches. Language modelling
(random token blocks) and masked-LM pre-training (masked sentences) differ only in their sampler."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from kiln.training.distributed import shard_rows

if TYPE_CHECKING:
    from kiln.training.trainer import Trainer


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy in nats): the effective number of equally likely next tokens."""
    return math.exp(loss) if loss < 700 else float("inf")


def step_generator(seed: int, step: int) -> torch.Generator:
    """The examples of one optimizer step depend only on (seed, step): resume is exact."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


IGNORE_INDEX = -100  # targets that do not count (cross_entropy's default ignore_index; masked LM: unmasked tokens)


class Slice(tuple):
    """One data-parallel rank's (inputs, targets) of a batch. `share`: its part of the batch's counted
    targets; `grad_scale` (= share × ranks, read by the Trainer) makes DDP's mean over the ranks of their
    mean losses equal one process's mean loss over the whole batch."""

    share: float = 1.0
    grad_scale: float = 1.0


def my_slice(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """This rank's equal slice of a batch every rank drew alike (the whole batch in one process)."""
    mine, _ = shard_rows(torch.arange(len(x)))
    if len(mine) == len(x):
        return x, y
    part = Slice((x[mine], y[mine]))
    counted, here = int((y != IGNORE_INDEX).sum()), int((y[mine] != IGNORE_INDEX).sum())
    world = len(x) // len(mine)
    part.share = here / counted if counted else 1.0 / world
    part.grad_scale = part.share * world
    return part


class Sampler(Protocol):
    """How (input, target) batches are drawn from a split's tensor."""

    tokens_per_example: float

    def sample(self, data: Tensor, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...

    def fixed(self, data: Tensor, batches: int, batch_size: int, seed: int) -> list[tuple[Tensor, Tensor]]: ...


class SampledTask:
    """`net(x, y)` returns (logits, mean loss). History rows: iteration, tokens, train_loss,
    validation_loss, validation_perplexity, lr, tokens_per_s."""

    unit = "iteration"
    has_validation = True

    def __init__(self, sampler: Sampler, train: Tensor, validation: Tensor, cfg: Any) -> None:
        self.sampler, self.cfg = sampler, cfg
        self.train, self.validation = train, validation
        self.tokens_per_step = cfg.batch_size * cfg.gradient_accumulation * sampler.tokens_per_example
        self.trainer: Trainer | None = None

    def setup(self, trainer: "Trainer") -> None:
        self.trainer = trainer
        self.train = self.train.to(trainer.device)
        self.validation = self.validation.to(trainer.device)
        cfg = self.cfg
        self.validation_batches = self.sampler.fixed(self.validation, cfg.eval_iters, cfg.batch_size, cfg.seed + 1)

    def rounds(self) -> list[int]:
        total, every = self.cfg.iterations, self.cfg.eval_interval
        return [min(every, total - start) for start in range(0, total, every)]

    def round_steps(self, round_index: int, first_step: int) -> Iterator[list[tuple[Tensor, Tensor]]]:
        cfg = self.cfg
        count = cfg.batch_size * cfg.gradient_accumulation
        for step in range(first_step, first_step + self.rounds()[round_index]):
            x, y = self.sampler.sample(self.train, count, step_generator(cfg.seed, step))
            yield [my_slice(x[i : i + cfg.batch_size], y[i : i + cfg.batch_size]) for i in range(0, count, cfg.batch_size)]

    def loss(self, net: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, float]:
        share = getattr(batch, "share", 1.0)
        logits, loss = net(*batch)
        if share == 0.0:  # no counted target on this rank: a zero loss that still takes part in DDP's backward
            return logits.sum() * 0.0, 0.0
        return loss, share

    def end_round(self, trainer: "Trainer", round_index: int, round_time: float) -> dict[str, Any]:
        steps = self.rounds()[round_index]
        val = self.estimate_loss(trainer, self.validation_batches)
        return {"iteration": trainer.step, "tokens": int(trainer.step * self.tokens_per_step),
                "validation_loss": val, "validation_perplexity": perplexity(val),
                "tokens_per_s": steps * self.tokens_per_step / round_time if round_time > 0 else None}

    @torch.no_grad()
    def estimate_loss(self, trainer: "Trainer", batches: list[tuple[Tensor, Tensor]]) -> float:
        """Mean loss over fixed (input, target) batches, in eval mode."""
        net = trainer.net
        was_training = net.training
        net.eval()
        total = torch.zeros((), device=trainer.device)
        for x, y in batches:
            with trainer.autocast():
                _, loss = net(x, y)
            total += loss.float()
        net.train(was_training)
        return float(total) / len(batches)

    def final_metrics(self, trainer: "Trainer") -> dict[str, dict[str, float]]:
        """Validation from the last evaluation; train loss over fixed training batches, same estimator."""
        cfg = self.cfg
        train = self.estimate_loss(trainer, self.sampler.fixed(self.train, cfg.eval_iters, cfg.batch_size, cfg.seed + 2))
        val = self.estimate_loss(trainer, self.validation_batches)  # the final weights (restored best ones too)
        return {"validation": {"loss": val, "perplexity": perplexity(val)},
                "train": {"loss": train, "perplexity": perplexity(train)}}
