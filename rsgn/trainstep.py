"""What one training batch of any model (the RSGN or a baseline) hands to the training loop."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TrainStep:
    """Output of ``model.train_step(x, ops_table, lengths)``: the loss is cross-entropy(logits, y) +
    ``regulariser``; ``active_fraction`` is measured on the batch; ``activity`` [B, N] feeds the
    RSGN's slow rules; ``aux_loss`` is the MoE's load-balancing loss (reported)."""

    logits: torch.Tensor
    regulariser: torch.Tensor | float
    active_fraction: float
    activity: torch.Tensor | None = None
    aux_loss: float | None = None
