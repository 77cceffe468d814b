"""The triton target's op table: :mod:`rsgn.ops` composed with Triton kernels
(:mod:`rsgn.kernels`) for its inner primitives, each with the signature of the primitive it
replaces (the reference of every kernel is the :mod:`rsgn.ops` function named).

===============  ==================================================================  ==========
primitive        kernel                                                              reference
===============  ==================================================================  ==========
edge_distances   d_H(p_i, p_j) = 2 asinh(|p_i - p_j| / sqrt(a_i a_j)) per in-edge     ops.edge_
                 slot, backward w.r.t. p and a (``kernels.distance``)                distances
nearest_spark    min_t delta(s_t, p_i) = |s_t - p_i|^2 / (a_s a_p) and its argmin,   ops.nearest
                 fused (``kernels.ignite``)                                          _spark
select_dense     exact radix top-cap / statistical top-k per sample                  ops.select
                 (``kernels.select``)                                                _dense
message_sum      h~[r] = b + sum_{e: dst_e = r} w_e g[src_e], CSR pull, no atomics,  sparse.edge
                 with backward (``kernels.spmm``)                                    _message_sum
soft_threshold   alpha = sigmoid((alpha_prev + gamma |h~| - theta) / T) fused with   ops.soft_
                 the norm (``kernels.gate``; PTX tanh on CUDA when ``fast``)         threshold
select_rows      radix / statistical select over ragged candidate rows               ops.select
                 (``kernels.select``)                                                _rows
step             the fused step (:mod:`.fused`) when ``fused``                       ops.step
===============  ==================================================================  ==========
"""

from __future__ import annotations

from functools import partial

import torch

from rsgn import ops
from rsgn.backends.triton.fused import GraphTables, fused_step
from rsgn.kernels import distance, gate, ignite, select, spmm
from rsgn.ops import OpTable
from rsgn.selection import mask_to_ids


def edge_distances(x: torch.Tensor, a: torch.Tensor, in_idx: torch.Tensor) -> torch.Tensor:
    """d_H(p_i, p_j) for every in-edge slot (i, s), j = in_idx[i, s]: [N, K], by the distance
    kernel (2 asinh form, differentiable)."""
    n, k = in_idx.shape
    rows = torch.arange(n, device=in_idx.device).unsqueeze(1).expand(n, k)
    return distance.pair_distance(x, a, rows, in_idx)


def select_dense(score: torch.Tensor, cap: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``cap`` of each row of ``score`` [B, N] by the selection kernels: (ids, valid) [B, W]
    ('radix': exactly min(cap, N) finite winners, ties to the lower index; 'stat': the
    statistical mask over the finite entries)."""
    if method == "radix":
        width = min(cap, score.shape[1])
        return select.radix_topk_dense(score.detach(), cap, float("-inf"), width)
    if method == "stat":
        return mask_to_ids(select.statistical_mask(score.detach(), cap))
    raise ValueError(f"unknown selection method {method!r} ({', '.join(ops.SELECTION_METHODS)})")


def select_rows(
    scores: torch.Tensor, rows: torch.Tensor, n_rows: int, k: int, method: str
) -> torch.Tensor:
    """k-winners mask over a ragged, row-sorted list by the selection kernels."""
    ptr = select.rows_ptr(rows, n_rows)
    if method == "radix":
        return select.radix_select_ragged(scores, ptr, k)
    if method == "stat":
        return select.statistical_select_ragged(scores.double(), ptr, k)
    raise ValueError(f"unknown selection method {method!r} ({', '.join(ops.SELECTION_METHODS)})")


def kernel_table(
    *, fast_tanh: bool = False, fused: bool = True, tables: GraphTables | None = None
) -> OpTable:
    """:func:`rsgn.ops.make_table` with the kernels above; with ``fused`` its step is the
    fused step, whose gradient (and fallback) is the same table's op-by-op step. ``tables``
    binds the fused kernels' graph tables of one graph (a program's), else they are computed
    per step."""
    prims = dict(
        edge_distances=edge_distances,
        nearest_spark=ignite.ignite_min,
        select_dense=select_dense,
        message_sum=spmm.edge_spmm,
        soft_threshold=partial(gate.soft_threshold, fast=bool(fast_tanh)),
        select_rows=select_rows,
    )
    op_by_op = ops.make_table(**prims)
    if not fused:
        return op_by_op
    return ops.make_table(
        **prims, fused_step=partial(fused_step, reference=op_by_op, tables=tables)
    )
