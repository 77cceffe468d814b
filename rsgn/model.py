"""The Resonant Sparse Geometry Network, sparse and read top to bottom.

Parameters (paper notation; ``cfg`` = :class:`rsgn.config.ModelConfig`)
----------------------------------------------------------------------
p_i = expmap0(v_i)     node positions in the Poincaré ball, tangent parametrisation [N, D]
theta_i                activation thresholds [N]
l_i                    hierarchical levels [N]
u_i, v_i               low-rank affinity factors [N, r]; a_ij = u_i . v_j (+ Hebbian part)
f_emb, s               spark embedding MLP d_in -> 4D -> D (tanh out) and its scale s
W_h, b_h, LN           message transform and LayerNorm (d x d)
W_init                 initial node state F -> d
W_o                    readout d -> C
E, W_c, c_i, W_s       options beyond the paper (``cfg``): token encoder d_in -> F (width w),
                       node codes, token skip path F -> C

Forward pass (``cfg.n_steps`` steps)
------------------------------------
0. encode: e_t = GELU(E *_w x)_t, a width-w convolution over tokens (``encoder_width`` w > 0,
           F = ``encoder_dim`` channels), or e_t = x_t (the paper, w = 0, F = d_in).
1. graph:  w_ji = sigmoid(a_ij) exp(-d_H(p_i,p_j)/tau) softplus(l_i - l_j + 1) on each node's
           k in-edges (hyperbolic k nearest neighbours + sprouted edges), w_ii = 0.
2. ignite: sparks s_t = expmap0(s f_emb(e_t)); alpha_i(0) = max_t exp(-d_H(s_t,p_i)^2/2sigma^2),
           capped to the k_active largest (exact radix select);
           h_i(0) = alpha_i(0) W_init e_{t*(i)} ('routed': t* is the spark that lit i),
           alpha_i(0) W_init mean_t e_t ('mean', the paper's code),
           alpha_i(0) W_init (e_{t*(i)} + mean_t e_t) ('both') or
           alpha_i(0) W_init max_t e_t ('max') or
           alpha_i(0) W_init sum_t pi_ti e_t, pi_ti = softmax_t(-d_H(s_t,p_i)^2/2sigma^2)
           ('attend', the default: the tokens that lit i route their features into it);
           plus W_pos v_i (``position_code``) and W_c c_i (``node_code``: a learned m-dim
           code per node).
3. for each step:  h~_i = W_h sum_{j in A} w_ji alpha_j h_j + b_h
                   alpha_i <- sigmoid((alpha_i + gamma |h~_i| - theta_i) / T)
                   alpha_i <- alpha_i / (1 + beta mean_{j in R(i)} alpha_j)     (inhibition)
                   A <- k_active winners with alpha > eps                        (the cap)
                   h_i <- LN(h~_i + h_i) alpha_i                                 (i in A)
4. readout: logits = W_o sum_{i in A} alpha_i h_i + b_o  (+ sum_{i in A} alpha_i R_i with
           ``node_readout``: a class vector per node; + W_s max_t e_t + b_s with
           ``token_skip``: a max-pool path around the RSGN, after the readout).
           ``feature_dropout`` drops token features e_t while training.

Slow (Hebbian) rules, each switchable (:meth:`RSGN.hebbian_step`, :meth:`RSGN.epoch_end`):
affinity Delta a_ij = eta_H R abar_i abar_j with decay lambda; homeostasis
Delta theta_i = eta_theta (abar_i - rho); pruning of edges weaker than 0.01 for K epochs;
sprouting of edges between uncorrelated pairs whose activity correlation exceeds 0.9; drift of
co-active nodes toward each other along geodesics.

The model calls only the backend interface (``rsgn.backends.base``); the torch backend is the
default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from rsgn import geometry
from rsgn.backends.base import ActiveState, Backend, Graph
from rsgn.config import ModelConfig
from rsgn.topology import knn_hyperbolic


@dataclass
class ForwardOutput:
    """Logits plus what training, Hebbian rules and reports need."""

    logits: torch.Tensor
    active_fraction_per_step: list[float]
    """Fraction of nodes active, averaged over the batch: [ignition, step 1, ..., step S]."""
    activity: torch.Tensor | None = None
    """Per-sample mean activation over steps [B, N] (only when ``record=True``)."""
    extras: dict = field(default_factory=dict)


class TokenConv(nn.Module):
    """A width-w convolution over the token axis of [B, T, F] ('same' padding, odd or even w):
    y_t = b + sum_{u} W_u x_{t+u-floor(w/2)} (zero outside the sequence)."""

    def __init__(self, d_in: int, d_out: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(d_in, d_out, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = (self.width - 1) // 2
        xt = nn.functional.pad(x.transpose(1, 2), (left, self.width - 1 - left))
        return self.conv(xt).transpose(1, 2)


def _default_backend() -> Backend:
    """The backend named by RSGN_BACKEND (default torch), through the lazy registry."""
    from rsgn.backends.registry import get_backend

    return get_backend()


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
        first = (
            nn.Linear(d_feat, 4 * dsp)
            if cfg.spark_context == 1
            else TokenConv(d_feat, 4 * dsp, cfg.spark_context)
        )
        self.spark = nn.Sequential(first, nn.GELU(), nn.Linear(4 * dsp, dsp), nn.Tanh())
        self.spark_scale = nn.Parameter(torch.tensor(cfg.spark_scale_init))
        self.w_init = nn.Linear(d_feat, d)
        self.w_skip = nn.Linear(d_feat, n_classes) if cfg.token_skip else None
        self.w_pos = nn.Linear(dsp, d) if cfg.position_code else None
        if cfg.node_code > 0:
            self.node_code = nn.Parameter(torch.randn(n, cfg.node_code))
            self.w_code = nn.Linear(cfg.node_code, d)
        else:
            self.node_code, self.w_code = None, None
        self.w_h = nn.Linear(d, d)
        self.ln = nn.LayerNorm(d)
        self.w_o = nn.Linear(d, n_classes)
        self.node_out = nn.Parameter(torch.zeros(n, n_classes)) if cfg.node_readout else None
        self.drop = nn.Dropout(cfg.feature_dropout) if cfg.feature_dropout > 0 else None

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

    # ------------------------------------------------------------------ geometry and graph
    def positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Node positions p = expmap0(v) [N, D] and exact conformal factors 1-|p|^2 [N]."""
        return geometry.expmap0_with_conformal(self.pos_v)

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

    def build_graph(self, backend: Backend) -> Graph:
        """Edge weights on the current topology (differentiable in positions, affinities,
        levels); cacheable at evaluation time."""
        x, a = self.positions()
        return backend.graph(
            x,
            a,
            self.aff_u,
            self.aff_v,
            self.level,
            self.hebb,
            self.in_idx,
            self.in_mask,
            tau=self.cfg.tau,
            inhibition_radius=self.cfg.inhibition_radius,
        )

    # ------------------------------------------------------------------ forward
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Token features the sparks and initial states read: e_t = GELU(conv_w(x))_t with the
        token encoder (``cfg.encoder_width > 0``), else the raw tokens x_t. [B, T, F]"""
        e = x if self.encoder is None else nn.functional.gelu(self.encoder(x))
        return e if self.drop is None else self.drop(e)

    def sparks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s_t = expmap0(s * f_emb(e_t)) [B, T, D] and their conformal factors [B, T]
        (e = :meth:`features` of the raw tokens x)."""
        return self._sparks_from_features(self.features(x))

    def _sparks_from_features(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return geometry.expmap0_with_conformal(self.spark_scale * self.spark(e))

    def forward(
        self,
        x: torch.Tensor,
        *,
        backend: Backend | None = None,
        graph: Graph | None = None,
        record: bool = False,
    ) -> ForwardOutput:
        cfg = self.cfg
        be = backend or _default_backend()
        g = graph if graph is not None else self.build_graph(be)
        bsz, n, cap = x.shape[0], cfg.n_nodes, cfg.k_active
        temperature = float(self.temperature)

        feats = self.features(x)
        sparks, spark_a = self._sparks_from_features(feats)
        st = be.ignite(
            sparks,
            spark_a,
            g,
            sigma=cfg.sigma_ign,
            eps=cfg.eps_active,
            cap=cap,
            method=cfg.selection,
        )
        bidx = torch.arange(bsz, device=x.device).unsqueeze(1)
        if cfg.init_state == "routed":
            h0 = self.w_init(feats[bidx, st.token])  # [B, W, d]
        elif cfg.init_state == "both":
            h0 = self.w_init(feats[bidx, st.token] + feats.mean(1, keepdim=True))
        elif cfg.init_state == "max":
            h0 = self.w_init(feats.amax(1)).unsqueeze(1)
        elif cfg.init_state == "attend":
            be.count_op("attend")
            h0 = self.w_init(self._attend(feats, be.token_distances(sparks, spark_a, g, st.ids)))
        else:
            h0 = self.w_init(feats.mean(1)).unsqueeze(1)
        if self.w_pos is not None:
            h0 = h0 + self.w_pos(self.pos_v[st.ids])
        if self.w_code is not None:
            h0 = h0 + self.w_code(self.node_code[st.ids])
        st = ActiveState(
            ids=st.ids,
            valid=st.valid,
            alpha=st.alpha,
            h=st.alpha.unsqueeze(-1) * h0 * st.valid.unsqueeze(-1),
        )

        if be.ledger is not None:
            self._count_front(be, x.shape[1], st.valid)
        fractions = [float(st.valid.sum()) / (bsz * n)]
        activity = self._accumulate(None, st, bsz) if record else None
        for _ in range(cfg.n_steps):
            st = be.step(
                st,
                g,
                self.w_h.weight,
                self.w_h.bias,
                self.theta,
                self.ln.weight,
                self.ln.bias,
                gamma=cfg.gamma,
                temperature=temperature,
                inhibition=cfg.inhibition_strength,
                cap=cap,
                eps=cfg.eps_active,
                method=cfg.selection,
            )
            fractions.append(float(st.valid.sum()) / (bsz * n))
            if record:
                activity = self._accumulate(activity, st, bsz)
        logits = be.readout(st, self.w_o.weight, self.w_o.bias, normalise=cfg.readout_norm)
        if be.ledger is not None:
            self._count_read_extras(be, x.shape[1], st.valid)
        if self.node_out is not None:
            wts = (st.alpha * st.valid).to(logits.dtype)  # [B, W]
            logits = logits + torch.einsum("bw,bwc->bc", wts, self.node_out[st.ids])
        if self.w_skip is not None:
            logits = logits + self.w_skip(feats.amax(1))
        if record:
            activity = activity / (cfg.n_steps + 1)
        return ForwardOutput(logits=logits, active_fraction_per_step=fractions, activity=activity)

    def _attend(self, feats: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Ignition-weighted token features for each ignited node i (``init_state='attend'``):

        pi_ti = softmax_t(-d_H(s_t, p_i)^2 / 2 sigma^2),   m_i = sum_t pi_ti e_t    [B, W, F]

        the tokens whose sparks lit node i (the Gaussian of the ignition, normalised over tokens)
        route their features into it. ``d`` [B, W, T] comes from the backend's
        ``token_distances`` (exact, or measured on an optical target)."""
        pi = torch.softmax(-d.pow(2) / (2 * self.cfg.sigma_ign**2), dim=-1)
        return torch.bmm(pi.to(feats.dtype), feats)

    def _count_front(self, be: Backend, t: int, valid: torch.Tensor) -> None:
        """Charge the model's front end (op ``encode``, electronic/host events) to the backend's
        ledger: the work before ignition and the initial states, per batch of B samples with T
        tokens and |A| = ``valid.sum()`` ignited nodes in all (F features, D space dims, d):

        MACs  = B T (w d_in F)_(encoder) + B T (c F 4D + 4D D + D)      (spark MLP, expmap0)
              + init: 'mean'/'max' B F d; 'routed' |A| F d; 'both' |A| F d + B F d;
                'attend' |A| T F + |A| F d (the distances: the backend's
                ``token_distances``, op ``attend``)
              + |A| d (alpha scaling) + |A| D d (position_code) + |A| m d (node_code)
        adds  = B T F for the mean / max pool ('mean', 'max', 'both')
        transcendentals = B T (F_(encoder) + 4D + D + 2) + |A| T ('attend': the softmax's exp)
        SRAM words = the front end's weights, read once per batch.

        The ignition distances themselves are the backend's ``ignite`` op."""
        cfg = self.cfg
        bsz = valid.shape[0]
        na = int(valid.sum())
        f = cfg.encoder_dim if self.encoder is not None else self.d_in
        dsp, d = cfg.d_space, cfg.d_hidden
        bt = bsz * t
        macs = bt * (cfg.spark_context * f * 4 * dsp + 4 * dsp * dsp + dsp) + na * d
        trans = bt * (4 * dsp + dsp + 2)
        adds = 0
        if self.encoder is not None:
            macs += bt * cfg.encoder_width * self.d_in * f
            trans += bt * f
        if cfg.init_state in ("mean", "max"):
            macs += bsz * f * d
            adds += bt * f
        elif cfg.init_state == "routed":
            macs += na * f * d
        elif cfg.init_state == "both":
            macs += na * f * d + bsz * f * d
            adds += bt * f
        else:  # attend
            macs += na * t * f + na * f * d
            trans += na * t
        if self.w_pos is not None:
            macs += na * dsp * d
        if self.w_code is not None:
            macs += na * cfg.node_code * d
        weights = sum(
            p.numel()
            for mod in (self.encoder, self.spark, self.w_init, self.w_pos, self.w_code)
            if mod is not None
            for p in mod.parameters()
        )
        be.count_op("encode")
        be.count("mac_fp32", macs)
        be.count("add_fp32", adds)
        be.count("transcendental_fp32", trans)
        be.count("sram_word_32b", weights)

    def _count_read_extras(self, be: Backend, t: int, valid: torch.Tensor) -> None:
        """Charge the readout options beyond the paper to op ``readout``: ``node_readout``
        |A| C MACs and |A| C SRAM words; ``token_skip`` B T F adds (max pool) and B F C MACs."""
        bsz, na, c = valid.shape[0], int(valid.sum()), self.n_classes
        be.count_op("readout")
        if self.node_out is not None:
            be.count("mac_fp32", na * c)
            be.count("sram_word_32b", na * c)
        if self.w_skip is not None:
            f = self.w_skip.in_features
            be.count("add_fp32", bsz * t * f)
            be.count("mac_fp32", bsz * f * c)
            be.count("sram_word_32b", f * c + c)

    def _accumulate(self, acc: torch.Tensor | None, st: ActiveState, bsz: int) -> torch.Tensor:
        n = self.cfg.n_nodes
        a = torch.zeros(bsz, n, device=st.alpha.device)
        a.scatter_add_(1, st.ids, (st.alpha * st.valid).detach().float())
        return a if acc is None else acc + a

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
    def epoch_end(self, backend: Backend | None = None) -> dict[str, float]:
        """Per-epoch slow rules: pruning (edges whose weight stayed below the threshold for
        ``prune_patience`` consecutive epochs are deleted) and the topology refresh."""
        cfg = self.cfg
        stats: dict[str, float] = {}
        if cfg.hebbian and cfg.hebb_prune and cfg.prune_patience > 0:
            g = self.build_graph(backend or _default_backend())
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
        + w_s F 4D + 4D + 4D D + D                        spark MLP (w_s = spark_context)
        + F d + d + d^2 + d + 2 d + d C + C               W_init, W_h, LN, W_o
        + [D d + d]_(position_code) + [N m + m d + d]_(node_code) + [F C + C]_(token_skip)
        + [N C]_(node_readout)
        """
        n, d, dsp, r, c = cfg.n_nodes, cfg.d_hidden, cfg.d_space, cfg.affinity_rank, n_classes
        f = cfg.encoder_dim if cfg.encoder_width > 0 else d_in
        total = n * (dsp + 2 + 2 * r) + 1
        if cfg.encoder_width > 0:
            total += cfg.encoder_width * d_in * f + f
        total += cfg.spark_context * f * 4 * dsp + 4 * dsp + 4 * dsp * dsp + dsp
        total += f * d + d + d * d + d + 2 * d + d * c + c
        if cfg.position_code:
            total += dsp * d + d
        if cfg.node_code > 0:
            total += n * cfg.node_code + cfg.node_code * d + d
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
