"""The RSGN forward pass, written once as a composition of an op table over a set of weights.

The trainable :class:`rsgn.model.RSGN` runs it on its live parameters; the torch and Triton
programs run it on a frozen :class:`rsgn.spec.ModelSpec` with their op tables; the optical
program with an op table whose distances are measured through the optics::

    m    = length_mask(lengths)                        real steps (padding)    [B, T]
    e_t  = encode(x, m)                                token features          [B, T, F]
    s_t  = spark_points(e_t), padded s_t := s_0        sparks in the ball      [B, T, D]
    A(0) = ignite(s, graph)                            top-cap nodes, alpha(0)
    h(0) = alpha(0) W_init m_i,  m_i = attend(e, d_H(s_t, p_i))   ('attend', the default)
                                 m_i = mean_t e_t                 ('mean', the paper)
    repeat n_steps:  A, h = step(A, h)                 propagate, inhibit, select, update
    logits = readout(A, h) [+ node_readout] [+ W_s max_t e_t]

A :class:`Trace` records what passed between the ops (batch and token counts, each active set)
for a target's cost model: sizes, never costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from rsgn import geometry, ops
from rsgn.ops import OpTable
from rsgn.spec import Hyper, Weights
from rsgn.state import ActiveState, Graph

INIT_STATES = ("attend", "mean")


@dataclass
class ForwardOutput:
    """Logits plus what training, the Hebbian rules and reports need."""

    logits: torch.Tensor
    active_fraction_per_step: list[float]
    """Fraction of nodes active, averaged over the batch: [ignition, step 1, ..., step S]."""
    activity: torch.Tensor | None = None
    """Per-sample mean activation over steps [B, N] (only when ``record=True``)."""


@dataclass
class Trace:
    """The sizes of one forward pass: B samples of T tokens and the active set after ignition
    and after each step (``states[s] = (ids, valid)``, detached)."""

    batch: int = 0
    tokens: int = 0
    states: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


def node_positions(w: Weights) -> tuple[torch.Tensor, torch.Tensor]:
    """p_i = expmap0(v_i) [N, D] and their exact conformal factors 1 - |p_i|^2 [N]."""
    return geometry.expmap0_with_conformal(w.pos_v)


def build_graph(w: Weights, hp: Hyper, table: OpTable = ops.TABLE) -> Graph:
    """The graph op on the weights' topology (differentiable in positions, affinities, levels)."""
    x, a = node_positions(w)
    return table.graph(
        x,
        a,
        w.aff_u,
        w.aff_v,
        w.level,
        w.hebb,
        w.in_idx,
        w.in_mask,
        tau=hp.tau,
        inhibition_radius=hp.inhibition_radius,
    )


def _accumulate(acc: torch.Tensor | None, st: ActiveState, n: int) -> torch.Tensor:
    a = torch.zeros(st.ids.shape[0], n, device=st.alpha.device)
    a.scatter_add_(1, st.ids, (st.alpha * st.valid).detach().float())
    return a if acc is None else acc + a


def forward(
    w: Weights,
    hp: Hyper,
    x: torch.Tensor,
    table: OpTable = ops.TABLE,
    *,
    graph: Graph | None = None,
    record: bool = False,
    trace: Trace | None = None,
    feature_dropout: float = 0.0,
    training: bool = False,
    lengths: torch.Tensor | None = None,
) -> ForwardOutput:
    """Run the RSGN on ``x`` [B, T, d_in] with the ops of ``table`` (see the module docstring).

    ``graph`` reuses a built graph (evaluation); ``record`` returns the per-sample mean
    activation [B, N] the Hebbian rules read; ``trace`` is filled with the run's sizes;
    ``feature_dropout`` drops token features while ``training``; ``lengths`` [B] (None: every
    step is real) marks steps t >= L_b as padding, which never ignites a node nor enters the
    initial states or the skip path (:func:`rsgn.ops.length_mask`).
    """
    g = graph if graph is not None else build_graph(w, hp, table)
    bsz, n = x.shape[0], hp.n_nodes
    mask = ops.length_mask(lengths, x.shape[1])
    feats = ops.encode(x, w.enc_w, w.enc_b, mask)
    if feature_dropout > 0:
        feats = F.dropout(feats, feature_dropout, training)
    sparks, spark_a = ops.spark_points(
        feats, w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2, w.spark_scale
    )
    sparks, spark_a = ops.mask_sparks(sparks, spark_a, mask)
    st = table.ignite(
        sparks, spark_a, g, sigma=hp.sigma_ign, eps=hp.eps_active, cap=hp.cap, method=hp.selection
    )
    if hp.init_state == "attend":
        d = table.token_distances(sparks, spark_a, g, st.ids)
        h0 = F.linear(ops.attend(feats, d, sigma=hp.sigma_ign, mask=mask), w.init_w, w.init_b)
    else:  # 'mean', the paper
        h0 = F.linear(ops.mean_tokens(feats, mask), w.init_w, w.init_b).unsqueeze(1)
    st = ActiveState(
        ids=st.ids,
        valid=st.valid,
        alpha=st.alpha,
        h=st.alpha.unsqueeze(-1) * h0 * st.valid.unsqueeze(-1),
    )
    if trace is not None:
        trace.batch, trace.tokens = bsz, x.shape[1]
        trace.states.append((st.ids.detach(), st.valid.detach()))
    fractions = [float(st.valid.sum()) / (bsz * n)]
    activity = _accumulate(None, st, n) if record else None
    for _ in range(hp.n_steps):
        st = table.step(
            st,
            g,
            w.h_w,
            w.h_b,
            w.theta,
            w.ln_w,
            w.ln_b,
            gamma=hp.gamma,
            temperature=hp.temperature,
            inhibition=hp.inhibition_strength,
            cap=hp.cap,
            eps=hp.eps_active,
            method=hp.selection,
        )
        fractions.append(float(st.valid.sum()) / (bsz * n))
        if trace is not None:
            trace.states.append((st.ids.detach(), st.valid.detach()))
        if record:
            activity = _accumulate(activity, st, n)
    logits = table.readout(st, w.out_w, w.out_b)
    if w.node_out is not None:
        logits = logits + ops.node_readout(st, w.node_out).to(logits.dtype)
    if w.skip_w is not None:
        logits = logits + F.linear(ops.max_tokens(feats, mask), w.skip_w, w.skip_b)
    if record:
        activity = activity / (hp.n_steps + 1)
    return ForwardOutput(logits=logits, active_fraction_per_step=fractions, activity=activity)
