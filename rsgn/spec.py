"""ModelSpec: a frozen, device-agnostic snapshot of a trained RSGN, the only thing a target reads.

``RSGN.export()`` makes one; ``Backend.prepare(spec)`` maps it onto a target. A spec holds the
hyper-parameters the ops take (:class:`Hyper`), the weights (:class:`Weights`, detached
tensors) and the topology (in-edge slots), nothing of the training machinery.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

SPEC_VERSION = 1


@dataclass(frozen=True)
class Hyper:
    """Sizes and op hyper-parameters of one RSGN (``rsgn.config.ModelConfig`` resolved)."""

    d_in: int
    n_classes: int
    n_nodes: int
    d_hidden: int
    d_space: int
    n_steps: int
    k_in: int
    tau: float
    sigma_ign: float
    eps_active: float
    cap: int
    """Active-set capacity per sample (k_active = floor(target_active N))."""
    gamma: float
    inhibition_radius: float
    inhibition_strength: float
    temperature: float
    init_state: str
    selection: str
    encoder_width: int
    """Width w of the token encoder (0: raw tokens feed the sparks and initial states)."""


@dataclass(frozen=True)
class Weights:
    """The tensors of one RSGN, by role (optional parts are None when the option is off)."""

    pos_v: torch.Tensor
    """Tangent-space node positions v_i [N, D]; p_i = expmap0(v_i)."""
    theta: torch.Tensor
    level: torch.Tensor
    aff_u: torch.Tensor
    aff_v: torch.Tensor
    hebb: torch.Tensor
    in_idx: torch.Tensor
    in_mask: torch.Tensor
    spark_scale: torch.Tensor
    spark_w1: torch.Tensor
    spark_b1: torch.Tensor
    spark_w2: torch.Tensor
    spark_b2: torch.Tensor
    init_w: torch.Tensor
    init_b: torch.Tensor
    h_w: torch.Tensor
    h_b: torch.Tensor
    ln_w: torch.Tensor
    ln_b: torch.Tensor
    out_w: torch.Tensor
    out_b: torch.Tensor
    enc_w: torch.Tensor | None = None
    enc_b: torch.Tensor | None = None
    node_out: torch.Tensor | None = None
    skip_w: torch.Tensor | None = None
    skip_b: torch.Tensor | None = None

    def map(self, fn) -> Weights:  # noqa: ANN001
        """A copy with ``fn`` applied to every tensor (None stays None)."""
        return Weights(
            **{
                f.name: (None if (v := getattr(self, f.name)) is None else fn(v))
                for f in dataclasses.fields(self)
            }
        )

    def front_end_params(self) -> int:
        """Number of weights of the front end (encoder, spark MLP, W_init), read once per batch."""
        parts = (
            self.enc_w,
            self.enc_b,
            self.spark_w1,
            self.spark_b1,
            self.spark_w2,
            self.spark_b2,
            self.init_w,
            self.init_b,
        )
        return sum(int(t.numel()) for t in parts if t is not None)


@dataclass(frozen=True)
class ModelSpec:
    """A trained RSGN as targets see it: hyper-parameters + frozen weights."""

    hyper: Hyper
    weights: Weights
    version: int = SPEC_VERSION

    def to(self, device: torch.device | str | None) -> ModelSpec:
        """The same spec with its tensors on ``device`` (None: unchanged)."""
        if device is None:
            return self
        return dataclasses.replace(self, weights=self.weights.map(lambda t: t.to(device)))

    @property
    def device(self) -> torch.device:
        return self.weights.pos_v.device
