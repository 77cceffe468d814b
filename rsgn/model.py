"""The Resonant Sparse Geometry Network, sparse and read top to bottom.

Parameters (paper notation; ``cfg`` = :class:`rsgn.config.ModelConfig`)
----------------------------------------------------------------------
p_i = expmap0(v_i)     node positions in the Poincaré ball, tangent parametrisation [N, D]
theta_i                activation thresholds [N]
l_i                    hierarchical levels [N]
u_i, v_i               low-rank affinity factors [N, r]; a_ij = u_i . v_j (+ Hebbian part)
f_emb, s               spark embedding MLP F -> 4D -> D (tanh out) and its scale s
W_h, b_h, LN           message transform and LayerNorm (d x d)
W_init                 initial node state F -> d
W_o                    readout d -> C
E, W_s, R_i            options beyond the paper (``cfg``): token encoder d_in -> F (width w),
                       token skip path F -> C, per-node class vectors

Forward pass: :func:`rsgn.forward.forward`, a composition of an op table (default
:data:`rsgn.ops.TABLE`, the definition) over this module's parameters; ``export()`` freezes the
parameters into the :class:`~rsgn.spec.ModelSpec` every target's ``prepare`` reads.

0. encode: e_t = GELU(E *_w x)_t, a width-w convolution over tokens (``encoder_width`` w > 0,
           F = ``encoder_dim`` channels), or e_t = x_t (the paper, w = 0, F = d_in).
1. graph:  w_ji = sigmoid(a_ij) exp(-d_H(p_i,p_j)/tau) softplus(l_i - l_j + 1) on each node's
           k in-edges (hyperbolic k nearest neighbours + sprouted edges), w_ii = 0.
2. ignite: sparks s_t = expmap0(s f_emb(e_t)); alpha_i(0) = max_t exp(-d_H(s_t,p_i)^2/2sigma^2),
           capped to the k_active largest (exact radix select);
           h_i(0) = alpha_i(0) W_init sum_t pi_ti e_t, pi_ti = softmax_t(-d_H(s_t,p_i)^2/2sigma^2)
           ('attend', the default: the tokens that lit i route their features into it) or
           alpha_i(0) W_init mean_t e_t ('mean', the paper's code).
3. for each step:  h~_i = W_h sum_{j in A} w_ji alpha_j h_j + b_h
                   alpha_i <- sigmoid((alpha_i + gamma |h~_i| - theta_i) / T)
                   alpha_i <- alpha_i / (1 + beta mean_{j in R(i)} alpha_j)     (inhibition)
                   A <- k_active winners with alpha > eps                        (the cap)
                   h_i <- LN(h~_i + h_i) alpha_i                                 (i in A)
4. readout: logits = W_o sum_{i in A} alpha_i h_i + b_o  (+ sum_{i in A} alpha_i R_i with
           ``node_readout``; + W_s max_t e_t + b_s with ``token_skip``: a max-pool path around
           the RSGN, after the readout). ``feature_dropout`` drops token features e_t while
           training.

Slow (Hebbian) rules, each switchable (:meth:`RSGN.hebbian_step`, :meth:`RSGN.epoch_end`):
affinity Delta a_ij = eta_H R abar_i abar_j with decay lambda; homeostasis
Delta theta_i = eta_theta (abar_i - rho); pruning of edges weaker than 0.01 for K epochs;
sprouting of edges between uncorrelated pairs whose activity correlation exceeds 0.9; drift of
co-active nodes toward each other along geodesics.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from rsgn import geometry, ops
from rsgn.config import ModelConfig
from rsgn.forward import ForwardOutput, build_graph, forward
from rsgn.ops import OpTable
from rsgn.spec import Hyper, ModelSpec, Weights
from rsgn.state import Graph
from rsgn.topology import knn_hyperbolic
from rsgn.trainstep import TrainStep


class TokenConv(nn.Module):
    """A width-w convolution over the token axis of [B, T, F] ('same' padding, odd or even w):
    y_t = b + sum_{u} W_u x_{t+u-floor((w-1)/2)} (zero outside the sequence); see
    :func:`rsgn.ops.token_conv`."""

    def __init__(self, d_in: int, d_out: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(d_in, d_out, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.token_conv(x, self.conv.weight, self.conv.bias)


class RSGN(nn.Module):
    """Sparse RSGN classifier for sequences ``x`` of shape [B, T, d_in]."""

    def __init__(self, d_in: int, n_classes: int, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig()
        cfg.validate()
        self.cfg = cfg
        self.d_in, self.n_classes = d_in, n_classes
        n, d, dsp, r = cfg.n_nodes, cfg.d_hidden, cfg.d_space, cfg.affinity_rank

        # slow parameters: geometry, thresholds, levels, affinities
        self.pos_v = nn.Parameter(torch.randn(n, dsp) * cfg.init_radius / math.sqrt(dsp))
        self.theta = nn.Parameter(torch.full((n,), cfg.theta_init))
        self.level = nn.Parameter(torch.zeros(n))
        self.aff_u = nn.Parameter(torch.randn(n, r) / math.sqrt(r))
        self.aff_v = nn.Parameter(torch.randn(n, r) / math.sqrt(r))
        # fast parameters
        self.encoder = (
            TokenConv(d_in, cfg.encoder_dim, cfg.encoder_width) if cfg.encoder_width > 0 else None
        )
        d_feat = cfg.encoder_dim if self.encoder is not None else d_in
        self.spark = nn.Sequential(
            nn.Linear(d_feat, 4 * dsp), nn.GELU(), nn.Linear(4 * dsp, dsp), nn.Tanh()
        )
        self.spark_scale = nn.Parameter(torch.tensor(cfg.spark_scale_init))
        self.w_init = nn.Linear(d_feat, d)
        self.w_skip = nn.Linear(d_feat, n_classes) if cfg.token_skip else None
        self.w_h = nn.Linear(d, d)
        self.ln = nn.LayerNorm(d)
        self.w_o = nn.Linear(d, n_classes)
        self.node_out = nn.Parameter(torch.zeros(n, n_classes)) if cfg.node_readout else None

        # topology and slow state (buffers: saved in checkpoints, not trained by gradient)
        k_tot = cfg.k_in + cfg.k_sprout
        self.register_buffer("in_idx", torch.zeros(n, k_tot, dtype=torch.int64))
        self.register_buffer("in_mask", torch.zeros(n, k_tot, dtype=torch.bool))
        self.register_buffer("hebb", torch.zeros(n, k_tot))
        self.register_buffer("low_count", torch.zeros(n, k_tot, dtype=torch.int64))
        self.register_buffer("pruned_keys", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("temperature", torch.tensor(cfg.temperature_start))
        self.register_buffer("reward_baseline", torch.tensor(float("nan")))
        self.refresh_topology()

    # ------------------------------------------------------------------ the forward pass
    def hyper(self) -> Hyper:
        """The op hyper-parameters of this model (the current annealed temperature included)."""
        cfg = self.cfg
        return Hyper(
            d_in=self.d_in,
            n_classes=self.n_classes,
            n_nodes=cfg.n_nodes,
            d_hidden=cfg.d_hidden,
            d_space=cfg.d_space,
            n_steps=cfg.n_steps,
            k_in=cfg.k_in,
            tau=cfg.tau,
            sigma_ign=cfg.sigma_ign,
            eps_active=cfg.eps_active,
            cap=cfg.k_active,
            gamma=cfg.gamma,
            inhibition_radius=cfg.inhibition_radius,
            inhibition_strength=cfg.inhibition_strength,
            temperature=float(self.temperature),
            init_state=cfg.init_state,
            selection=cfg.selection,
            encoder_width=cfg.encoder_width,
        )

    def weights(self) -> Weights:
        """The live parameters and buffers by role (differentiable; see :meth:`export`)."""
        enc = self.encoder.conv if self.encoder is not None else None
        return Weights(
            pos_v=self.pos_v,
            theta=self.theta,
            level=self.level,
            aff_u=self.aff_u,
            aff_v=self.aff_v,
            hebb=self.hebb,
            in_idx=self.in_idx,
            in_mask=self.in_mask,
            spark_scale=self.spark_scale,
            spark_w1=self.spark[0].weight,
            spark_b1=self.spark[0].bias,
            spark_w2=self.spark[2].weight,
            spark_b2=self.spark[2].bias,
            init_w=self.w_init.weight,
            init_b=self.w_init.bias,
            h_w=self.w_h.weight,
            h_b=self.w_h.bias,
            ln_w=self.ln.weight,
            ln_b=self.ln.bias,
            out_w=self.w_o.weight,
            out_b=self.w_o.bias,
            enc_w=None if enc is None else enc.weight,
            enc_b=None if enc is None else enc.bias,
            node_out=self.node_out,
            skip_w=None if self.w_skip is None else self.w_skip.weight,
            skip_b=None if self.w_skip is None else self.w_skip.bias,
        )

    @torch.no_grad()
    def export(self) -> ModelSpec:
        """A frozen snapshot (detached copies of every tensor): what targets ``prepare``."""
        return ModelSpec(
            hyper=self.hyper(), weights=self.weights().map(lambda t: t.detach().clone())
        )

    def positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Node positions p = expmap0(v) [N, D] and exact conformal factors 1-|p|^2 [N]."""
        return geometry.expmap0_with_conformal(self.pos_v)

    def build_graph(self, table: OpTable | None = None) -> Graph:
        """Edge weights on the current topology (differentiable in positions, affinities,
        levels); reusable at evaluation time."""
        return build_graph(self.weights(), self.hyper(), table or ops.TABLE)

    def forward(
        self,
        x: torch.Tensor,
        *,
        ops_table: OpTable | None = None,
        graph: Graph | None = None,
        record: bool = False,
        lengths: torch.Tensor | None = None,
    ) -> ForwardOutput:
        """:func:`rsgn.forward.forward` with this model's parameters and ``ops_table``
        (default: the definition, :data:`rsgn.ops.TABLE`); ``lengths`` [B] marks padding."""
        return forward(
            self.weights(),
            self.hyper(),
            x,
            ops_table or ops.TABLE,
            graph=graph,
            record=record,
            feature_dropout=self.cfg.feature_dropout,
            training=self.training,
            lengths=lengths,
        )

    # ------------------------------------------------------------------ training protocol
    def train_step(
        self,
        x: torch.Tensor,
        ops_table: OpTable | None = None,
        lengths: torch.Tensor | None = None,
    ) -> TrainStep:
        """One training batch: logits, no regulariser, the mean active fraction over steps and
        the recorded activity (when the Hebbian rules are on)."""
        out = self(x, ops_table=ops_table, record=self.cfg.hebbian, lengths=lengths)
        steps = out.active_fraction_per_step
        frac = sum(steps[1:]) / max(1, len(steps) - 1)
        return TrainStep(out.logits, 0.0, frac, activity=out.activity)

    def begin_epoch(self, epoch: int, epochs: int) -> dict[str, float]:
        """Anneal the temperature for ``epoch`` of ``epochs`` (see
        :meth:`set_temperature_for_epoch`)."""
        return {"temperature": self.set_temperature_for_epoch(epoch, epochs)}

    def after_batch(self, step: TrainStep, loss: float) -> dict[str, float]:
        """The per-batch slow rules on the batch's recorded activity (:meth:`hebbian_step`)."""
        if not self.cfg.hebbian:
            return {}
        return self.hebbian_step(step.activity, loss)

    @torch.no_grad()
    def refresh_topology(self) -> None:
        """Recompute the k-nearest in-edges from the current positions.

        Sprouted slots (the last ``k_sprout`` columns) are kept; pruned pairs stay dead;
        Hebbian affinities and pruning counters follow their (i, j) pair.
        """
        cfg = self.cfg
        n, k = cfg.n_nodes, cfg.k_in
        x, a = self.positions()
        knn = knn_hyperbolic(x, a, k).to(self.in_idx.device)
        rows = torch.arange(n, device=knn.device).unsqueeze(1)
        old_keys = (rows * n + self.in_idx)[self.in_mask]
        old_hebb = self.hebb[self.in_mask]
        old_low = self.low_count[self.in_mask]
        new_idx = self.in_idx.clone()
        new_mask = self.in_mask.clone()
        new_idx[:, :k] = knn
        new_mask[:, :k] = True
        # a sprouted edge that the kNN list now holds anyway frees its sprout slot (no duplicates)
        dup = (new_idx[:, k:, None] == new_idx[:, None, :k]).any(-1)
        new_mask[:, k:] &= ~dup
        keys = rows * n + new_idx
        if self.pruned_keys.numel():
            new_mask[:, :k] &= ~torch.isin(keys[:, :k], self.pruned_keys)
        hebb = torch.zeros_like(self.hebb)
        low = torch.zeros_like(self.low_count)
        if old_keys.numel():
            order = torch.argsort(old_keys)
            sk = old_keys[order]
            pos = torch.searchsorted(sk, keys).clamp_max(sk.numel() - 1)
            hit = (sk[pos] == keys) & new_mask
            hebb[hit] = old_hebb[order][pos[hit]]
            low[hit] = old_low[order][pos[hit]]
        self.in_idx.copy_(new_idx)
        self.in_mask.copy_(new_mask)
        self.hebb.copy_(hebb)
        self.low_count.copy_(low)

    # ------------------------------------------------------------------ slow Hebbian rules
    @torch.no_grad()
    def hebbian_step(self, activity: torch.Tensor, loss: float) -> dict[str, float]:
        """Per-batch slow rules from the recorded activity [B, N] and the batch loss.

        - affinity:    hebb_ij <- lambda hebb_ij + eta_H R abar_i abar_j   (live edges j -> i)
        - homeostasis: theta_i <- theta_i + eta_theta (abar_i - rho)
        - sprouting:   for the most active nodes, a pair (j -> i) not yet connected whose
                       activity correlation over the batch exceeds the threshold gets an edge
                       in a free sprout slot of i
        - drift:       p_i <- exp_{p_i}(eta_p sum_j c_ij log_{p_i}(p_j) / sum_j c_ij), c_ij =
                       mean_b act_bi act_bj over live edges (co-active nodes move closer)

        R is -loss ('neg_loss', the paper) or baseline - loss ('advantage', running mean).
        """
        cfg = self.cfg
        stats: dict[str, float] = {}
        if not cfg.hebbian:
            return stats
        abar = activity.mean(0)  # [N]
        if cfg.reward == "neg_loss":
            reward = -loss
        else:
            base = float(self.reward_baseline)
            if math.isnan(base):
                base = loss
            reward = base - loss
            self.reward_baseline.fill_(0.9 * base + 0.1 * loss)
        stats["reward"] = reward
        if cfg.hebb_affinity:
            co = abar.unsqueeze(1) * abar[self.in_idx]
            self.hebb.mul_(cfg.affinity_decay).add_(cfg.hebb_lr * reward * co * self.in_mask)
        if cfg.hebb_homeostasis:
            rho = cfg.target_active if cfg.homeostasis_target is None else cfg.homeostasis_target
            self.theta.add_(cfg.homeostasis_lr * (abar - rho))
        if cfg.hebb_sprout and cfg.k_sprout > 0:
            stats["sprouted"] = float(self._sprout(activity))
        if cfg.hebb_drift and cfg.drift_lr > 0:
            stats["drift"] = float(self._drift(activity))
        return stats

    def _sprout(self, activity: torch.Tensor, max_nodes: int = 256, max_new: int = 64) -> int:
        cfg = self.cfg
        n = cfg.n_nodes
        abar = activity.mean(0)
        m = min(n, max_nodes)
        top = torch.topk(abar, m).indices
        top = top[abar[top] > 0]
        if top.numel() < 2 or activity.shape[0] < 2:
            return 0
        act = activity[:, top]
        act = act - act.mean(0)
        sd = act.pow(2).mean(0).sqrt()
        corr = (act.T @ act) / activity.shape[0] / (sd.unsqueeze(1) * sd.unsqueeze(0) + 1e-12)
        corr.fill_diagonal_(0)
        cand = (corr > cfg.sprout_threshold).nonzero()[: 16 * max_new]  # bounded work per batch
        added = 0
        free = ~self.in_mask[:, cfg.k_in :]
        for ii, jj in cand.tolist():
            if added >= max_new:
                break
            i, j = int(top[ii]), int(top[jj])
            key = i * n + j
            if (self.in_idx[i][self.in_mask[i]] == j).any():
                continue
            if self.pruned_keys.numel() and (self.pruned_keys == key).any():
                continue
            slots = free[i].nonzero()
            if slots.numel() == 0:
                continue
            s = cfg.k_in + int(slots[0])
            self.in_idx[i, s] = j
            self.in_mask[i, s] = True
            self.hebb[i, s] = 0.0
            self.low_count[i, s] = 0
            free[i, s - cfg.k_in] = False
            added += 1
        return added

    def _drift(self, activity: torch.Tensor) -> float:
        cfg = self.cfg
        x, _ = self.positions()
        co = (activity.unsqueeze(2) * activity[:, self.in_idx]).mean(0) * self.in_mask  # [N,K]
        tot = co.sum(1)
        moving = tot > 0
        if not moving.any():
            return 0.0
        xi = x.unsqueeze(1).expand_as(x[self.in_idx])
        logs = geometry.logmap(xi, x[self.in_idx])  # [N, K, D]
        step = cfg.drift_lr * (co.unsqueeze(-1) * logs).sum(1) / tot.clamp_min(1e-12).unsqueeze(-1)
        new_x = geometry.expmap(x, step)
        new_v = geometry.logmap0(new_x)
        new_v = torch.where(moving.unsqueeze(-1), new_v, self.pos_v)
        moved = float((new_v - self.pos_v).norm(dim=-1).max())
        self.pos_v.copy_(new_v.clamp(-1e3, 1e3))
        return moved

    @torch.no_grad()
    def epoch_end(self, ops_table: OpTable | None = None) -> dict[str, float]:
        """Per-epoch slow rules: pruning (edges whose weight stayed below the threshold for
        ``prune_patience`` consecutive epochs are deleted) and the topology refresh."""
        cfg = self.cfg
        stats: dict[str, float] = {}
        if cfg.hebbian and cfg.hebb_prune and cfg.prune_patience > 0:
            g = self.build_graph(ops_table)
            low = (g.w < cfg.prune_threshold) & self.in_mask
            self.low_count.copy_(
                torch.where(low, self.low_count + 1, torch.zeros_like(self.low_count))
            )
            dead = self.low_count >= cfg.prune_patience
            if dead.any():
                rows = torch.arange(cfg.n_nodes, device=dead.device).unsqueeze(1)
                keys = (rows * cfg.n_nodes + self.in_idx)[dead]
                self.pruned_keys = torch.unique(torch.cat([self.pruned_keys, keys]))
                self.in_mask &= ~dead
                self.low_count[dead] = 0
            stats["pruned"] = float(dead.sum())
        self.refresh_topology()
        stats["edges"] = float(self.in_mask.sum())
        return stats

    def set_temperature_for_epoch(self, epoch: int, epochs: int) -> float:
        """Cosine annealing T(e) = T_end + (T_start - T_end) (1 + cos(pi e / E)) / 2."""
        cfg = self.cfg
        frac = epoch / max(1, epochs - 1) if epochs > 1 else 1.0
        t = cfg.temperature_end + (cfg.temperature_start - cfg.temperature_end) * 0.5 * (
            1 + math.cos(math.pi * frac)
        )
        self.temperature.fill_(t)
        return t

    def n_params(self) -> int:
        """Trainable parameter count."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @staticmethod
    def param_formula(d_in: int, n_classes: int, cfg: ModelConfig) -> int:
        """The parameter count in closed form (F = encoder_dim with the encoder, else d_in):

        N (D + 2 + 2 r) + 1                               positions, theta, levels, u, v, s
        + [w_e d_in F + F]_(encoder)                      token encoder
        + F 4D + 4D + 4D D + D                            spark MLP
        + F d + d + d^2 + d + 2 d + d C + C               W_init, W_h, LN, W_o
        + [F C + C]_(token_skip) + [N C]_(node_readout)
        """
        n, d, dsp, r, c = cfg.n_nodes, cfg.d_hidden, cfg.d_space, cfg.affinity_rank, n_classes
        f = cfg.encoder_dim if cfg.encoder_width > 0 else d_in
        total = n * (dsp + 2 + 2 * r) + 1
        if cfg.encoder_width > 0:
            total += cfg.encoder_width * d_in * f + f
        total += f * 4 * dsp + 4 * dsp + 4 * dsp * dsp + dsp
        total += f * d + d + d * d + d + 2 * d + d * c + c
        if cfg.token_skip:
            total += f * c + c
        if cfg.node_readout:
            total += n * c
        return total

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401
        # pruned_keys changes length during training: resize before the copy.
        key = prefix + "pruned_keys"
        if key in state_dict:
            self.pruned_keys = torch.zeros_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def model_args(self) -> dict:
        return {"d_in": self.d_in, "n_classes": self.n_classes}


__all__ = ["RSGN", "ForwardOutput"]
