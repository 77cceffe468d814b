"""The paper-faithful dense formulation of RSGN (as in the authors' public code), for comparison.

Every node holds state for every sample ([B, N, d]); the connection matrix is a full N x N
tensor; one step costs O(B N^2 d). Kept only as the yardstick of the sparse model's speed and
as the "reference code" behaviour (100% of nodes active, inhibition that drives activations
toward 1). The distance is the float32-accurate hyperbolic one (the public code's Euclidean
ignition and +1e-5 distance bias are not reproduced).

    W_ji = sigmoid(u_i . v_j) exp(-d_H(p_i, p_j)/tau) softplus(l_i - l_j + 1),  W_ii = 0
    alpha(0) = max_t exp(-d_H(s_t, p_i)^2 / (2 sigma^2)),  h(0) = alpha(0) W_init mean_t x_t
    m = W^T (alpha * [alpha > eps] * h);  h~ = W_h m + b_h
    alpha <- sigmoid((alpha + gamma |h~| - theta)/T);  h <- LN(h~ + h) alpha
    alpha <- min(1, alpha |R(i)| / sum_{R(i)} alpha)          (public code's "inhibition")
    logits = W_o sum_i alpha_i h_i + b_o
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from rsgn import geometry
from rsgn.config import ModelConfig


class DenseRSGN(nn.Module):
    """Dense N x N RSGN; same parameter set and count as :class:`rsgn.model.RSGN`."""

    def __init__(self, d_in: int, n_classes: int, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig()
        self.cfg = cfg
        n, d, dsp, r = cfg.n_nodes, cfg.d_hidden, cfg.d_space, cfg.affinity_rank
        self.pos_v = nn.Parameter(torch.randn(n, dsp) * cfg.init_radius / math.sqrt(dsp))
        self.theta = nn.Parameter(torch.full((n,), cfg.theta_init))
        self.level = nn.Parameter(torch.zeros(n))
        self.aff_u = nn.Parameter(torch.randn(n, r) / math.sqrt(r))
        self.aff_v = nn.Parameter(torch.randn(n, r) / math.sqrt(r))
        self.spark = nn.Sequential(
            nn.Linear(d_in, 4 * dsp), nn.GELU(), nn.Linear(4 * dsp, dsp), nn.Tanh()
        )
        self.spark_scale = nn.Parameter(torch.tensor(cfg.spark_scale_init))
        self.w_init = nn.Linear(d_in, d)
        self.w_h = nn.Linear(d, d)
        self.ln = nn.LayerNorm(d)
        self.w_o = nn.Linear(d, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        p, a = geometry.expmap0_with_conformal(self.pos_v)
        d_nn = geometry.dist_from_parts(
            p.unsqueeze(1), p.unsqueeze(0), a.unsqueeze(1), a.unsqueeze(0)
        )
        w = (
            torch.sigmoid(self.aff_u @ self.aff_v.T)
            * torch.exp(-d_nn / cfg.tau)
            * F.softplus(self.level.unsqueeze(1) - self.level.unsqueeze(0) + 1.0)
        )
        w = w * (1 - torch.eye(cfg.n_nodes, device=x.device))  # w[i, j]: j -> i
        s, sa = geometry.expmap0_with_conformal(self.spark_scale * self.spark(x))
        d_sn = geometry.dist_from_parts(s.unsqueeze(2), p, sa.unsqueeze(2), a)  # [B, T, N]
        alpha = torch.exp(-(d_sn**2) / (2 * cfg.sigma_ign**2)).amax(1)
        h = alpha.unsqueeze(-1) * self.w_init(x.mean(1)).unsqueeze(1)
        nb = (d_nn < cfg.inhibition_radius).float()
        for _ in range(cfg.n_steps):
            src = h * (alpha * (alpha > cfg.eps_active)).unsqueeze(-1)
            m = torch.einsum("ij,bjd->bid", w, src)
            ht = self.w_h(m)
            alpha = torch.sigmoid((alpha + cfg.gamma * ht.norm(dim=-1) - self.theta) / 1.0)
            h = self.ln(ht + h) * alpha.unsqueeze(-1)
            alpha = (alpha * nb.sum(1) / (alpha @ nb.T).clamp_min(1e-6)).clamp_max(1.0)
        return self.w_o((alpha.unsqueeze(-1) * h).sum(1))
