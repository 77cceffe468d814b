"""What makes training generalise, for every model the loop trains: the step-counted schedule,
time-series augmentation and model selection with early stopping.

Schedule (:func:`plan_schedule`): E = max(epochs, ceil(min_steps / S)) epochs of S =
ceil(n_train / batch) steps; the cosine schedule spans E S steps.

Augmentation (:func:`augment`, training batches only, each term off at 0):
    jitter   x_bt <- x_bt + sigma eps_bt                    (real steps only)
    scale    x_btc <- x_btc (1 + s eps_bc)                   (one factor per sample, channel)
    shift    x'_t = x_{t-k} (0 outside [0, L)), L' = clamp(L + k, 1, T), k ~ U{-K..K},
             K = floor(shift L)

Selection (:class:`Selector`): after each evaluation the selection split's score (accuracy,
ties broken by the lower loss) is compared with the best so far; the best weights are kept
and restored at the end; with ``patience`` P the run stops after P evaluations without a
better score, once ``min_steps`` steps are done.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch

from rsgn.config import TrainConfig


@dataclass(frozen=True)
class Schedule:
    """Epochs to run, optimiser steps per epoch and in all."""

    epochs: int
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def plan_schedule(n_train: int, cfg: TrainConfig) -> Schedule:
    """E = max(epochs, ceil(min_steps / S)), S = ceil(n_train / batch_size)."""
    spe = max(1, math.ceil(n_train / cfg.batch_size))
    return Schedule(max(cfg.epochs, math.ceil(cfg.min_steps / spe)), spe)


def augments(cfg: TrainConfig) -> bool:
    """Whether any augmentation is on."""
    return cfg.augment_jitter > 0 or cfg.augment_scale > 0 or cfg.augment_shift > 0


def augment(
    x: torch.Tensor, lengths: torch.Tensor | None, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A randomly augmented copy of the batch x [B, T, F] (see the module docstring); the
    lengths [B] (None: all T) come back explicit when shifting. Draws from ``gen`` only."""
    bsz, t, f = x.shape
    real = None
    if lengths is not None:
        real = torch.arange(t)[None, :] < lengths.cpu()[:, None]
    if cfg.augment_scale > 0:
        factor = 1.0 + cfg.augment_scale * torch.randn(bsz, 1, f, generator=gen)
        x = x * factor.to(x.device, x.dtype)
    if cfg.augment_jitter > 0:
        noise = cfg.augment_jitter * torch.randn(bsz, t, f, generator=gen)
        if real is not None:
            noise = noise * real.unsqueeze(-1)
        x = x + noise.to(x.device, x.dtype)
    if cfg.augment_shift > 0:
        x, lengths = _shift(x, lengths, cfg.augment_shift, gen)
    return x, lengths


def _shift(
    x: torch.Tensor, lengths: torch.Tensor | None, frac: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """x'_t = x_{t-k} on 0 <= t-k < L (else 0), L' = clamp(L + k, 1, T), k ~ U{-K..K},
    K = floor(frac L), with k >= 1 - L (one real step stays)."""
    bsz, t, _ = x.shape
    lens = torch.full((bsz,), t, dtype=torch.int64) if lengths is None else lengths.cpu()
    k_max = torch.floor(frac * lens.double()).to(torch.int64)
    u = torch.rand(bsz, generator=gen, dtype=torch.float64)
    k = torch.floor(u * (2 * k_max + 1)).to(torch.int64) - k_max
    k = torch.maximum(k, 1 - lens)
    src = torch.arange(t)[None, :] - k[:, None]  # [B, T]
    ok = (src >= 0) & (src < lens[:, None])
    idx = src.clamp(0, t - 1).to(x.device)
    out = x.gather(1, idx.unsqueeze(-1).expand_as(x)) * ok.unsqueeze(-1).to(x.device, x.dtype)
    new_len = (lens + k).clamp(1, t)
    return out, new_len.to(x.device)


class Selector:
    """Keeps the best evaluation's weights (by the selection split) and decides early stops.

    ``score = (accuracy, -loss)``, compared lexicographically; ``state()`` / ``load()`` carry
    it through a checkpoint for resuming."""

    def __init__(self, patience: int, min_steps: int) -> None:
        self.patience, self.min_steps = patience, min_steps
        self.best: tuple[float, float] | None = None
        self.best_epoch = 0
        self.best_step = 0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.since_best = 0

    def update(
        self, model: torch.nn.Module, accuracy: float, loss: float, epoch: int, step: int
    ) -> bool:
        """Record one evaluation; True when it is the best so far (its weights are copied)."""
        loss_key = -loss if math.isfinite(loss) else -math.inf
        score = (accuracy, loss_key)
        if self.best is not None and score <= self.best:
            self.since_best += 1
            return False
        self.best, self.best_epoch, self.best_step, self.since_best = score, epoch, step, 0
        self.best_weights = copy.deepcopy(
            {k: v.detach().cpu() for k, v in model.state_dict().items()}
        )
        return True

    def should_stop(self, steps_done: int) -> bool:
        """Patience exhausted and at least ``min_steps`` steps done."""
        return (
            self.patience > 0 and self.since_best >= self.patience and steps_done >= self.min_steps
        )

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best weights into ``model`` (no-op before any evaluation)."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state(self) -> dict[str, Any]:
        return {
            "best": None if self.best is None else list(self.best),
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "since_best": self.since_best,
            "best_weights": self.best_weights,
        }

    def load(self, state: dict[str, Any]) -> None:
        best = state.get("best")
        self.best = None if best is None else (float(best[0]), float(best[1]))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.best_step = int(state.get("best_step", 0))
        self.since_best = int(state.get("since_best", 0))
        self.best_weights = state.get("best_weights")
