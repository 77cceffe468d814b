r"""The RSGN ops: the definition, as pure differentiable torch functions.

Every target is measured against these functions. Each takes tensors and hyper-parameters
(never a model, a backend or a ledger), keeps no state and returns tensors. Notation as in
``reference/rsgn-paper-spec.md``: N nodes in the Poincaré ball B^D, K in-edge slots per node,
B samples of T tokens, d the node state width, A the active set of a sample.

==============  ================================================================  =============
op              computes                                                          work
==============  ================================================================  =============
mask            m_bt = [t < L_b] for padded batches (``lengths``): padded steps
                are zeroed before the encoder, their sparks replaced by s_0, and
                left out of 'attend', 'mean' and the max of the skip path
encode          e_t = GELU(conv_w(x))_t (token encoder) or x_t                    O(B T w F)
sparks          s_t = expmap0(s f_emb(e_t))                                       O(B T F D)
graph           w_ji = sigmoid(a_ij) exp(-d_H(p_i,p_j)/tau) softplus(l_i-l_j+1)   O(N K (r+D))
ignite          alpha_i(0) = max_t exp(-d_H(s_t,p_i)^2 / 2 sigma^2), top-cap      O(B T N D)
attend          m_i = sum_t softmax_t(-d_H(s_t,p_i)^2 / 2 sigma^2) e_t            O(|A| T F)
propagate       h~_i = W_h sum_{j in A} w_ji alpha_j h_j + b_h;                   O(|A|(K d+d^2))
                alpha_i' = sigmoid((alpha_i + gamma |h~_i| - theta_i) / T)
inhibit         alpha_i <- alpha_i / (1 + beta mean_{j in R(i)} alpha_j)          O(|C| K)
select          exact k-winners per sample (sort-free radix select)               O(|C|)
update          h_i <- LN(h~_i + h_i) alpha_i on the winners                      O(|A| d)
step            propagate -> inhibit -> select -> update                          the sum
readout         logits = W_o sum_{i in A} alpha_i h_i + b_o                        O(|A| d + d C)
==============  ================================================================  =============

An :class:`OpTable` bundles one implementation of each op; :func:`make_table` builds the
reference table with some inner primitives replaced (a Triton kernel for the message sum, an
optical measurement for the distances, a surrogate with noise), so the composition stays the
one written here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from rsgn import geometry
from rsgn.selection import (
    mask_to_ids,
    radix_select_mask,
    radix_select_rows,
    segment_rank,
    statistical_mask,
    statistical_rows,
)
from rsgn.sparse import edge_message_sum, gather_out_edges, out_csr, row_norm
from rsgn.state import ActiveState, Candidates, Graph

SELECTION_METHODS = ("radix", "stat")
_IGNITE_CHUNK_ELEMS = 1 << 24  # B*T*chunk distance evaluations per no-grad chunk


def _unknown_method(method: str) -> ValueError:
    return ValueError(f"unknown selection method {method!r} ({', '.join(SELECTION_METHODS)})")


# ------------------------------------------------------------------------------ front end
def token_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A width-w convolution over the token axis of x [B, T, F_in] with 'same' padding:

    y_t = b + sum_u W_u x_{t+u-floor((w-1)/2)}   (zero outside the sequence),  [B, T, F_out]

    ``weight`` [F_out, F_in, w] as ``nn.Conv1d`` stores it."""
    width = weight.shape[-1]
    left = (width - 1) // 2
    xt = F.pad(x.transpose(1, 2), (left, width - 1 - left))
    return F.conv1d(xt, weight, bias).transpose(1, 2)


def length_mask(lengths: torch.Tensor | None, t: int) -> torch.Tensor | None:
    """m_bt = [t < L_b]: True on the L_b real steps of sample b, False on its padding [B, T];
    None (no padding) when ``lengths`` is None."""
    if lengths is None:
        return None
    steps = torch.arange(t, device=lengths.device)
    return steps.unsqueeze(0) < lengths.to(steps.device).unsqueeze(1)


def encode(
    x: torch.Tensor,
    enc_w: torch.Tensor | None,
    enc_b: torch.Tensor | None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token features e_t = GELU(conv_w(m x))_t m_t with the token encoder, else e_t = m_t x_t.
    [B, T, F]

    ``mask`` m [B, T] (:func:`length_mask`; None: no padding) zeroes padded steps before the
    convolution, so the encoder reads past a sequence's end as the zeros of its 'same' padding
    (the features of real steps equal those of the unpadded sequence), and zeroes the padded
    features."""
    if mask is not None:
        x = x * mask.unsqueeze(-1).to(x.dtype)
    e = x if enc_w is None else F.gelu(token_conv(x, enc_w, enc_b))
    return e if mask is None else e * mask.unsqueeze(-1).to(e.dtype)


def mask_sparks(
    sparks: torch.Tensor, spark_a: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded tokens' sparks replaced by the sample's first spark s_0 (and its conformal
    factor): max_t exp(-d_H(s_t, p_i)^2 / 2 sigma^2) over the padded sequence then equals the
    max over its real tokens, so a padded step never ignites a node, on every target's ignite
    (the ops need no mask). Requires L_b >= 1."""
    if mask is None:
        return sparks, spark_a
    sp = torch.where(mask.unsqueeze(-1), sparks, sparks[:, :1])
    return sp, torch.where(mask, spark_a, spark_a[:, :1])


def mean_tokens(e: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """mean over the real steps, sum_t m_t e_t / L [B, F] (the paper's 'mean' initial state)."""
    if mask is None:
        return e.mean(1)
    m = mask.unsqueeze(-1).to(e.dtype)
    return (e * m).sum(1) / m.sum(1).clamp_min(1)


def max_tokens(e: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """max over the real steps, max_{t < L} e_t [B, F] (the token skip path)."""
    if mask is None:
        return e.amax(1)
    return e.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)


def spark_points(
    e: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spark points s_t = expmap0(s tanh(W_2 GELU(W_1 e_t + b_1) + b_2)) [B, T, D] and their
    exact conformal factors 1 - |s_t|^2 [B, T] (the spark MLP F -> 4D -> D)."""
    f = torch.tanh(F.linear(F.gelu(F.linear(e, w1, b1)), w2, b2))
    return geometry.expmap0_with_conformal(scale * f)


# ------------------------------------------------------------------------------ graph
def edge_distances(x: torch.Tensor, a: torch.Tensor, in_idx: torch.Tensor) -> torch.Tensor:
    """d_H(p_i, p_j) = 2 asinh(|p_i - p_j| / sqrt(a_i a_j)) for every in-edge slot (i, s),
    j = in_idx[i, s]: [N, K]."""
    return geometry.dist_from_parts(x.unsqueeze(1), x[in_idx], a.unsqueeze(1), a[in_idx])


def edge_weights(
    d: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    level: torch.Tensor,
    hebb: torch.Tensor,
    in_idx: torch.Tensor,
    in_mask: torch.Tensor,
    *,
    tau: float,
) -> torch.Tensor:
    """w_ji = sigmoid(u_i . v_j + H_ij) exp(-d_ij / tau) softplus(l_i - l_j + 1) on live slots,
    0 on dead ones: [N, K] (d = :func:`edge_distances`, H the Hebbian affinity)."""
    aff = (u.unsqueeze(1) * v[in_idx]).sum(-1) + hebb
    lvl = F.softplus(level.unsqueeze(1) - level[in_idx] + 1.0)
    w = torch.sigmoid(aff) * torch.exp(-d / tau) * lvl
    return w * in_mask


def inhibition_slots(
    d: torch.Tensor, in_idx: torch.Tensor, in_mask: torch.Tensor, *, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """R(i) = {j -> i live : d_H(p_i, p_j) < radius}, packed first into [N, K_inh] slots
    (K_inh = max_i |R(i)|, at least 1): (node ids, valid)."""
    inh = in_mask & (d.detach() < radius)
    k_inh = max(1, int(inh.sum(1).max()))
    first = torch.argsort((~inh).to(torch.int8), dim=1, stable=True)[:, :k_inh]
    return in_idx.gather(1, first), inh.gather(1, first)


def graph(
    x: torch.Tensor,
    a: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    level: torch.Tensor,
    hebb: torch.Tensor,
    in_idx: torch.Tensor,
    in_mask: torch.Tensor,
    *,
    tau: float,
    inhibition_radius: float,
    distances: Callable[..., torch.Tensor] = edge_distances,
) -> Graph:
    """The graph op: edge distances (``distances``), :func:`edge_weights`, the out-edge CSR
    and the inhibition neighbourhoods R(i) (:func:`inhibition_slots`)."""
    d = distances(x, a, in_idx)
    w = edge_weights(d, u, v, level, hebb, in_idx, in_mask, tau=tau)
    ptr, out_edge = out_csr(in_idx, in_mask)
    inh_idx, inh_valid = inhibition_slots(d, in_idx, in_mask, radius=inhibition_radius)
    return Graph(
        x=x,
        a=a,
        in_idx=in_idx,
        in_mask=in_mask,
        w=w,
        out_ptr=ptr,
        out_edge=out_edge,
        inh_idx=inh_idx,
        inh_valid=inh_valid,
    )


# ------------------------------------------------------------------------------ ignite
@torch.no_grad()
def nearest_spark(
    sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """min over tokens of delta = |s_t - p_i|^2 / (a_s a_p) and its argmin: [B, N] each.

    delta is monotone in d_H (d_H = 2 asinh sqrt(delta)); |s - p|^2 = |s|^2 + |p|^2 - 2 s.p as
    one GEMM per chunk of nodes. No gradient: it only chooses the nearest spark and the active
    set; exact distances follow for those (:func:`spark_distances`).
    """
    bsz, t, _ = sparks.shape
    n = x.shape[0]
    chunk = max(1, _IGNITE_CHUNK_ELEMS // max(1, bsz * t))
    dmin = torch.empty(bsz, n, device=sparks.device, dtype=sparks.dtype)
    tok = torch.empty(bsz, n, device=sparks.device, dtype=torch.int64)
    sp, sa = sparks.detach(), spark_a.detach()
    s2 = (sp * sp).sum(-1, keepdim=True)  # [B, T, 1]
    xd, ad = x.detach(), a.detach()
    p2 = (xd * xd).sum(-1)
    for s0 in range(0, n, chunk):
        sl = slice(s0, s0 + chunk)
        num = torch.baddbmm(s2 + p2[sl], sp, xd[sl].T.expand(bsz, -1, -1), alpha=-2.0)
        dl = num.clamp_min_(0) / sa.unsqueeze(2)
        dmin[:, sl], tok[:, sl] = dl.min(1)
        dmin[:, sl] /= ad[sl]
    return dmin, tok


def ignition_key(dmin: torch.Tensor, method: str) -> torch.Tensor:
    """Selection key for ignition: -delta for the exact select; -log delta (the near-Gaussian
    log-distance domain) for statistical top-k."""
    if method == "radix":
        return -dmin
    if method == "stat":
        return -torch.log(dmin.clamp_min(1e-30))
    raise _unknown_method(method)


def select_dense(score: torch.Tensor, cap: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``cap`` of each row of ``score`` [B, N]: ('radix') exactly min(cap, N) winners,
    ties to the lower index; ('stat') the statistical top-k mask. Returns (ids, valid) [B, W]."""
    if method == "radix":
        mask = radix_select_mask(score.detach(), cap)
        return mask_to_ids(mask, width=min(cap, score.shape[1]))
    if method == "stat":
        mask = statistical_mask(score.detach(), cap, torch.isfinite(score))
        return mask_to_ids(mask)
    raise _unknown_method(method)


def spark_distances(
    s_sel: torch.Tensor, a_sel: torch.Tensor, x_sel: torch.Tensor, a_nodes: torch.Tensor
) -> torch.Tensor:
    """d_H between each selected node and the spark that lit it, 2 asinh(|s - p| /
    sqrt(a_s a_p)): [B, W]."""
    return geometry.dist_from_parts(s_sel, x_sel, a_sel, a_nodes)


def ignite(
    sparks: torch.Tensor,
    spark_a: torch.Tensor,
    graph: Graph,
    *,
    sigma: float,
    eps: float,
    cap: int,
    method: str,
    nearest: Callable[..., tuple[torch.Tensor, torch.Tensor]] = nearest_spark,
    select: Callable[..., tuple[torch.Tensor, torch.Tensor]] = select_dense,
    distances: Callable[..., torch.Tensor] = spark_distances,
) -> ActiveState:
    """alpha_i(0) = max_t exp(-d_H(s_t, p_i)^2 / (2 sigma^2)), capped to the ``cap`` largest per
    sample and kept where alpha > eps.

    The max over tokens is taken on the monotone proxy (``nearest``) without gradient; the
    exact distance and its gradient are evaluated only for the selected (sample, node, token)
    triples (``distances``). ``token`` holds the spark that lit each node.
    """
    bsz = sparks.shape[0]
    dmin, tok = nearest(sparks, spark_a, graph.x, graph.a)
    ids, valid = select(ignition_key(dmin, method), cap, method)
    tsel = tok.gather(1, ids)
    s_sel = sparks[torch.arange(bsz, device=sparks.device).unsqueeze(1), tsel]  # [B,W,D]
    a_sel = spark_a.gather(1, tsel)
    d = distances(s_sel, a_sel, graph.x[ids], graph.a[ids])
    alpha = torch.exp(-(d * d) / (2 * sigma * sigma))
    valid = valid & (alpha.detach() > eps)
    return ActiveState(ids=ids, valid=valid, alpha=alpha * valid, token=tsel)


def token_distances(
    sparks: torch.Tensor, spark_a: torch.Tensor, graph: Graph, ids: torch.Tensor
) -> torch.Tensor:
    """d_H(s_t, p_i) from every spark of sample b to each node i in ``ids[b]``: [B, W, T]."""
    p, pa = graph.x[ids], graph.a[ids]  # [B, W, D], [B, W]
    return geometry.dist_from_parts(
        sparks.unsqueeze(1), p.unsqueeze(2), spark_a.unsqueeze(1), pa.unsqueeze(2)
    )


def attend(
    feats: torch.Tensor, d: torch.Tensor, *, sigma: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Ignition-weighted token features of each ignited node i:

    pi_ti = softmax_{t < L}(-d_H(s_t, p_i)^2 / 2 sigma^2),   m_i = sum_t pi_ti e_t    [B, W, F]

    the tokens whose sparks lit node i route their features into it (``d`` [B, W, T] from
    :func:`token_distances`, or measured by a target); padded steps (``mask`` False) get
    pi = 0."""
    logit = -d.pow(2) / (2 * sigma**2)
    if mask is not None:
        logit = logit.masked_fill(~mask.unsqueeze(1), float("-inf"))
    pi = torch.softmax(logit, dim=-1)
    return torch.bmm(pi.to(feats.dtype), feats)


# ------------------------------------------------------------------------------ propagate
def soft_threshold(
    alpha_prev: torch.Tensor,
    htilde: torch.Tensor,
    theta: torch.Tensor,
    *,
    gamma: float,
    temperature: float,
) -> torch.Tensor:
    """alpha = sigmoid((alpha_prev + gamma |h~| - theta) / T), per row of h~ [M, d]."""
    norm = row_norm(htilde)
    return torch.sigmoid((alpha_prev + gamma * norm - theta) / temperature)


def propagate(
    state: ActiveState,
    graph: Graph,
    w_h: torch.Tensor,
    b_h: torch.Tensor,
    theta: torch.Tensor,
    *,
    gamma: float,
    temperature: float,
    message_sum: Callable[..., torch.Tensor] = edge_message_sum,
    soft_threshold: Callable[..., torch.Tensor] = soft_threshold,
) -> Candidates:
    """One step over the active set A (a sparse push along out-edges):

    h~_i = sum_{j in A, j->i} w_ji alpha_j (W_h h_j) + b_h   (= W_h m_i + b_h, W_h linear)
    alpha_i' = sigmoid((alpha_i + gamma |h~_i| - theta_i) / T)

    for every node i reached from A or in A (the candidates); nodes neither active nor reached
    stay silent. Candidates are compacted through a [B N] scratch map (linear, sort-free).
    """
    bsz, width = state.ids.shape
    n = graph.n_nodes
    dev = state.ids.device
    d = state.h.shape[-1]
    act_rows = state.valid.reshape(-1).nonzero(as_tuple=True)[0]  # rows into [B*W]
    act_b = act_rows // width
    act_ids = state.ids.reshape(-1)[act_rows]
    g = (state.alpha.unsqueeze(-1) * (state.h @ w_h.T)).reshape(bsz * width, d)
    edges, owner = gather_out_edges(graph.out_ptr, graph.out_edge, act_ids)
    dst = edges // graph.in_idx.shape[1]
    b_e = act_b[owner]
    hit = torch.zeros(bsz * n, dtype=torch.bool, device=dev)
    hit[b_e * n + dst] = True
    hit[act_b * n + act_ids] = True
    uniq = hit.nonzero(as_tuple=True)[0]
    m = uniq.numel()
    slot = torch.empty(bsz * n, dtype=torch.int64, device=dev)
    slot[uniq] = torch.arange(m, device=dev)
    inv_e, inv_a = slot[b_e * n + dst], slot[act_b * n + act_ids]
    w_e = graph.w.reshape(-1)[edges]
    # edges arrive grouped by active source; CSR pointer over all B*W source slots
    per_src = torch.zeros(bsz * width, dtype=torch.int64, device=dev)
    per_src[act_rows] = torch.bincount(owner, minlength=act_rows.numel())
    src_ptr = torch.zeros(bsz * width + 1, dtype=torch.int64, device=dev)
    src_ptr[1:] = per_src.cumsum(0)
    htilde = message_sum(inv_e, src_ptr, w_e, g, b_h, m)
    alpha_prev = torch.zeros(m, device=dev, dtype=g.dtype).index_put(
        (inv_a,), state.alpha.reshape(-1)[act_rows]
    )
    prev_row = torch.full((m,), -1, dtype=torch.int64, device=dev)
    prev_row[inv_a] = act_rows
    cand_b, cand_i = uniq // n, uniq % n
    alpha = soft_threshold(alpha_prev, htilde, theta[cand_i], gamma=gamma, temperature=temperature)
    return Candidates(
        batch=cand_b, node=cand_i, htilde=htilde, alpha=alpha, prev_row=prev_row, n_batch=bsz
    )


# ------------------------------------------------------------------------------ inhibit
def inhibit(cand: Candidates, graph: Graph, *, strength: float) -> torch.Tensor:
    """alpha_i <- alpha_i / (1 + beta mean_{j in R(i)} alpha_j) over the candidates [M],
    R(i) = in-neighbours of i within the inhibition radius (alpha_j = 0 for non-candidates)."""
    if strength == 0:
        return cand.alpha
    n = graph.n_nodes
    scratch = torch.zeros(cand.n_batch * n, device=cand.alpha.device, dtype=cand.alpha.dtype)
    scratch = scratch.index_put((cand.batch * n + cand.node,), cand.alpha)
    nb = graph.inh_idx[cand.node]  # [M, K_inh]
    nmask = graph.inh_valid[cand.node]
    vals = scratch[cand.batch.unsqueeze(1) * n + nb] * nmask
    mean = vals.sum(1) / nmask.sum(1).clamp_min(1)
    return cand.alpha / (1.0 + strength * mean)


# ------------------------------------------------------------------------------ select
def select_rows(
    scores: torch.Tensor, rows: torch.Tensor, n_rows: int, k: int, method: str
) -> torch.Tensor:
    """k-winners mask over a ragged, row-sorted list: 'radix' exact (ties to the lower
    position), 'stat' statistical (approximate counts)."""
    if method == "radix":
        return radix_select_rows(scores, rows, n_rows, k)
    if method == "stat":
        return statistical_rows(scores, rows, n_rows, k)
    raise _unknown_method(method)


def select(
    batch: torch.Tensor,
    node: torch.Tensor,
    score: torch.Tensor,
    n_batch: int,
    n_nodes: int,
    *,
    cap: int,
    eps: float,
    method: str,
    select_rows: Callable[..., torch.Tensor] = select_rows,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A = top-``cap`` of score per sample among the candidate rows (sorted by sample, then
    node), keeping score > eps. ``radix``: exactly min(cap, |C|) winners before the eps cut,
    ties to the lower node id; ``stat``: statistical top-k.

    Returns ``ids [B, W]``, ``row [B, W]`` (index into the candidate rows, -1 if none) and
    ``valid [B, W]``; W = min(cap, N) for ``radix``.
    """
    dev = score.device
    width = min(cap, n_nodes)
    s = score.detach().float()
    mask = select_rows(s, batch, n_batch, cap, method) & (s > eps)
    counts = torch.bincount(batch, minlength=n_batch)
    pos = segment_rank(mask, batch, counts) - 1
    if method == "stat":
        width = max(1, int(torch.bincount(batch[mask], minlength=n_batch).max()))
    ids = torch.zeros(n_batch, width, dtype=torch.int64, device=dev)
    row = torch.full_like(ids, -1)
    valid = torch.zeros_like(ids, dtype=torch.bool)
    idx = mask.nonzero(as_tuple=True)[0]
    ids[batch[idx], pos[idx]] = node[idx]
    row[batch[idx], pos[idx]] = idx
    valid[batch[idx], pos[idx]] = True
    return ids, row, valid


# ------------------------------------------------------------------------------ update
def update(
    cand: Candidates,
    alpha: torch.Tensor,
    prev: ActiveState,
    ids: torch.Tensor,
    row: torch.Tensor,
    valid: torch.Tensor,
    ln_weight: torch.Tensor,
    ln_bias: torch.Tensor,
) -> ActiveState:
    """h_i = LN(h~_i + h_i_prev) alpha_i on the winners (h_prev = 0 where i was not active);
    an empty candidate set gives an all-silent state."""
    d = cand.htilde.shape[-1]
    if cand.htilde.shape[0] == 0:
        z = torch.zeros(*ids.shape, d, device=ids.device, dtype=cand.htilde.dtype)
        return ActiveState(ids=ids, valid=valid, alpha=z[..., 0] + 0 * ln_weight.sum(), h=z)
    r = row.clamp_min(0)
    ht = cand.htilde[r]  # [B, W, d]
    prow = cand.prev_row[r]
    hprev = prev.h.reshape(-1, d)[prow.clamp_min(0)] * (prow >= 0).unsqueeze(-1)
    a = alpha[r] * valid
    h = F.layer_norm(ht + hprev, (d,), ln_weight, ln_bias) * a.unsqueeze(-1)
    return ActiveState(
        ids=torch.where(valid, ids, torch.zeros_like(ids)), valid=valid, alpha=a, h=h
    )


def step(
    state: ActiveState,
    graph: Graph,
    w_h: torch.Tensor,
    b_h: torch.Tensor,
    theta: torch.Tensor,
    ln_weight: torch.Tensor,
    ln_bias: torch.Tensor,
    *,
    gamma: float,
    temperature: float,
    inhibition: float,
    cap: int,
    eps: float,
    method: str,
    propagate: Callable[..., Candidates] = propagate,
    inhibit: Callable[..., torch.Tensor] = inhibit,
    select: Callable[..., tuple[torch.Tensor, ...]] = select,
    update: Callable[..., ActiveState] = update,
) -> ActiveState:
    """One propagation step, propagate -> inhibit -> select -> update (a fused implementation
    must return the same state)."""
    cand = propagate(state, graph, w_h, b_h, theta, gamma=gamma, temperature=temperature)
    alpha = inhibit(cand, graph, strength=inhibition)
    ids, row, valid = select(
        cand.batch,
        cand.node,
        alpha,
        state.ids.shape[0],
        graph.n_nodes,
        cap=cap,
        eps=eps,
        method=method,
    )
    return update(cand, alpha, state, ids, row, valid, ln_weight, ln_bias)


# ------------------------------------------------------------------------------ readout
def readout(state: ActiveState, w_o: torch.Tensor, b_o: torch.Tensor) -> torch.Tensor:
    """logits = W_o sum_{i in A} alpha_i h_i + b_o   [B, C]."""
    pooled = (state.alpha.unsqueeze(-1) * state.h).sum(1)
    return pooled @ w_o.T + b_o


def node_readout(state: ActiveState, node_out: torch.Tensor) -> torch.Tensor:
    """sum_{i in A} alpha_i R_i, a learned class vector R_i per node read through the final
    active set [B, C] (the ``node_readout`` option)."""
    wts = state.alpha * state.valid
    return torch.einsum("bw,bwc->bc", wts, node_out[state.ids])


# ------------------------------------------------------------------------------ op tables
@dataclass(frozen=True)
class OpTable:
    """One implementation of each op (the same signatures as the functions above)."""

    graph: Callable[..., Graph]
    ignite: Callable[..., ActiveState]
    token_distances: Callable[..., torch.Tensor]
    propagate: Callable[..., Candidates]
    inhibit: Callable[..., torch.Tensor]
    select: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    update: Callable[..., ActiveState]
    step: Callable[..., ActiveState]
    readout: Callable[..., torch.Tensor]


def make_table(
    *,
    edge_distances: Callable[..., torch.Tensor] = edge_distances,
    nearest_spark: Callable[..., tuple[torch.Tensor, torch.Tensor]] = nearest_spark,
    select_dense: Callable[..., tuple[torch.Tensor, torch.Tensor]] = select_dense,
    spark_distances: Callable[..., torch.Tensor] = spark_distances,
    token_distances: Callable[..., torch.Tensor] = token_distances,
    message_sum: Callable[..., torch.Tensor] = edge_message_sum,
    soft_threshold: Callable[..., torch.Tensor] = soft_threshold,
    inhibit: Callable[..., torch.Tensor] = inhibit,
    select_rows: Callable[..., torch.Tensor] = select_rows,
    update: Callable[..., ActiveState] = update,
    readout: Callable[..., torch.Tensor] = readout,
    fused_step: Callable[..., ActiveState] | None = None,
) -> OpTable:
    """The reference composition with some primitives replaced. ``fused_step`` replaces the
    composed propagate -> inhibit -> select -> update."""
    prop = partial(propagate, message_sum=message_sum, soft_threshold=soft_threshold)
    sel = partial(select, select_rows=select_rows)
    return OpTable(
        graph=partial(graph, distances=edge_distances),
        ignite=partial(
            ignite, nearest=nearest_spark, select=select_dense, distances=spark_distances
        ),
        token_distances=token_distances,
        propagate=prop,
        inhibit=inhibit,
        select=sel,
        update=update,
        step=fused_step
        or partial(step, propagate=prop, inhibit=inhibit, select=sel, update=update),
        readout=readout,
    )


TABLE = make_table()
"""The reference op table (the torch target's)."""
