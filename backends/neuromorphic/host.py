r"""The host's part of a neuromorphic inference: the same pieces :func:`rsgn.forward.forward`
composes before and after the propagation steps, called explicitly from :mod:`rsgn.ops`.

This is host work (a conventional processor beside the chip): it is charged with the
electronic cost model (:func:`.cost.charge_host`, i.e. :mod:`rsgn.backends.torch.cost`) and not
timed. The propagation itself runs on the chip (:mod:`.program`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rsgn import ops
from rsgn.spec import ModelSpec
from rsgn.state import ActiveState, Graph


@dataclass(frozen=True)
class HostStart:
    """What the host hands the chip: token features (kept for the readout's skip path) and the
    ignited active set with its initial states."""

    feats: torch.Tensor
    """[B, T, F] token features e_t."""
    state: ActiveState
    """Ignited nodes: ids, valid [B, W], alpha(0) [B, W], h(0) [B, W, d]."""
    mask: torch.Tensor | None = None
    """[B, T] real steps (None: no padding), for the readout's skip path."""


@torch.no_grad()
def front_end(
    spec: ModelSpec, graph: Graph, x: torch.Tensor, lengths: torch.Tensor | None = None
) -> HostStart:
    """Host work (electronic cost model): the front end, ignition and initial states.

    e_t  = encode(x)                              token features
    s_t  = spark_points(e_t)                      sparks in the ball
    A(0) = ignite(s, graph)                       top-cap nodes, alpha(0)
    h(0) = alpha(0) (W_init m_i + b_init)         m_i = attend(e, d_H(s_t, p_i)) ('attend')
                                                  or mean_t e_t ('mean')
    """
    w, hp = spec.weights, spec.hyper
    mask = ops.length_mask(lengths, x.shape[1])
    feats = ops.encode(x, w.enc_w, w.enc_b, mask)
    sparks, spark_a = ops.spark_points(
        feats, w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2, w.spark_scale
    )
    sparks, spark_a = ops.mask_sparks(sparks, spark_a, mask)
    st = ops.ignite(
        sparks,
        spark_a,
        graph,
        sigma=hp.sigma_ign,
        eps=hp.eps_active,
        cap=hp.cap,
        method=hp.selection,
    )
    if hp.init_state == "attend":
        d = ops.token_distances(sparks, spark_a, graph, st.ids)
        h0 = F.linear(ops.attend(feats, d, sigma=hp.sigma_ign, mask=mask), w.init_w, w.init_b)
    else:  # 'mean', the paper
        h0 = F.linear(ops.mean_tokens(feats, mask), w.init_w, w.init_b).unsqueeze(1)
    h = st.alpha.unsqueeze(-1) * h0 * st.valid.unsqueeze(-1)
    return HostStart(feats, ActiveState(ids=st.ids, valid=st.valid, alpha=st.alpha, h=h), mask)


@torch.no_grad()
def readout(
    spec: ModelSpec, state: ActiveState, feats: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Host work (electronic cost model): the logits from the final active set read off the
    chip, logits = W_o sum_{i in A} alpha_i h_i + b_o [+ sum_{i in A} alpha_i R_i]
    [+ W_s max_t e_t + b_s]."""
    w = spec.weights
    logits = ops.readout(state, w.out_w, w.out_b)
    if w.node_out is not None:
        logits = logits + ops.node_readout(state, w.node_out).to(logits.dtype)
    if w.skip_w is not None:
        logits = logits + F.linear(ops.max_tokens(feats, mask), w.skip_w, w.skip_b)
    return logits
