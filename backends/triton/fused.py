"""The fused propagation step of the triton target: propagate -> inhibit -> select -> update in
four kernel launches (:mod:`rsgn.kernels.step`), with the reference decomposition as its
gradient.

Forward (no host synchronisation, no candidate list): with g = alpha (W_h h) one GEMM,

    h~_i    = sum_{j in A, j->i} w_ji g_j + b_h                       (scores kernel, pull)
    alpha_i = sigmoid((alpha_prev_i + gamma |h~_i| - theta_i) / T)
    s_i     = alpha_i / (1 + beta mean_{j in R(i)} alpha_j)           (inhibit kernel)
    A'      = exact top-cap of s over the B x N scores, s > eps        (dense radix select)
    h_i     = LN(h~_i + h_prev_i) s_i on A'                           (update kernel: h~
                                                                        recomputed per winner)

Backward: :class:`FusedStep` recomputes the step with the reference decomposition
(:func:`rsgn.ops.propagate` / :func:`~rsgn.ops.inhibit` / :func:`~rsgn.ops.update` as the
given op table composes them, i.e. with the triton kernels for the message sum and the gate) on
the *same* winners and differentiates that: gradient checkpointing, exact with respect to the
reference, nothing stored but the inputs and the winners.

The kernels take the graph as int32 ELL tables (:func:`graph_tables`); a program computes them
once for its graph at ``prepare`` and binds them, the training table computes them per step
(two elementwise passes over [N, K] and [N, K_inh], measured below the step's own cost).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from rsgn.kernels import select as kselect
from rsgn.kernels import step as kstep
from rsgn.ops import OpTable
from rsgn.state import ActiveState, Candidates, Graph

GraphTables = tuple[torch.Tensor, torch.Tensor]
"""(src [N, K], inh [N, K_inh]) int32 with -1 on dead slots."""


def fused_applies(method: str, dtype: torch.dtype) -> bool:
    """Whether the fused kernels run a step: the exact radix select on float32 states
    (statistical selection and float64 take the op-by-op decomposition)."""
    return method == "radix" and dtype != torch.float64


def graph_tables(graph: Graph) -> GraphTables:
    """The fused kernels' int32 in-edge and inhibition tables of ``graph``."""
    return kstep.graph_tables(graph.in_idx, graph.in_mask, graph.inh_idx, graph.inh_valid)


@dataclass(frozen=True)
class StepOptions:
    """The scalar hyper-parameters of one step."""

    gamma: float
    temperature: float
    inhibition: float
    cap: int
    eps: float


@torch.no_grad()
def fused_forward(
    graph: Graph,
    tables: GraphTables,
    opts: StepOptions,
    ids: torch.Tensor,
    valid: torch.Tensor,
    alpha: torch.Tensor,
    h: torch.Tensor,
    w: torch.Tensor,
    w_h: torch.Tensor,
    b_h: torch.Tensor,
    theta: torch.Tensor,
    ln_w: torch.Tensor,
    ln_b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four launches of the fused step (no autograd): (h', alpha', ids', valid')."""
    src, inh = tables
    n = graph.n_nodes
    bsz, width = ids.shape
    d = h.shape[-1]
    slots = kstep.slot_map(ids, valid, n)
    g = (alpha.unsqueeze(-1) * (h @ w_h.T)).reshape(bsz * width, d)
    a_c, cand, par, _, kept = kstep.scores(
        src, w, slots, g, alpha, b_h, theta, opts.gamma, opts.temperature, opts.inhibition
    )
    score = kstep.inhibit(a_c, cand, inh, par)
    new_ids, new_valid = kselect.radix_topk_dense(score, opts.cap, opts.eps, min(opts.cap, n))
    h2, a2 = kstep.update(
        new_ids, new_valid, score, src, w, slots, g, h, b_h, ln_w, ln_b, kept=kept
    )
    return h2.to(h.dtype), a2.to(alpha.dtype), new_ids, new_valid


def rows_of(cand: Candidates, ids: torch.Tensor, valid: torch.Tensor, n: int) -> torch.Tensor:
    """Row of each (sample, winner) in the candidate list (sorted by sample, node), or -1."""
    key = cand.batch * n + cand.node
    q = torch.arange(ids.shape[0], device=ids.device).unsqueeze(1) * n + ids
    pos = torch.searchsorted(key, q.reshape(-1)).reshape(ids.shape)
    return torch.where(valid, pos.clamp_max(max(0, key.numel() - 1)), torch.full_like(pos, -1))


class FusedStep(torch.autograd.Function):
    """Forward: :func:`fused_forward`. Backward: the ``reference`` table's propagate, inhibit
    and update recomputed on the forward's winners, differentiated (exact gradients of the
    reference decomposition)."""

    @staticmethod
    def forward(
        ctx, reference, graph, tables, opts, ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b
    ):  # noqa: D102
        h2, a2, ids2, valid2 = fused_forward(
            graph, tables, opts, ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b
        )
        ctx.reference, ctx.graph, ctx.opts = reference, graph, opts
        ctx.save_for_backward(ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b, ids2, valid2)
        ctx.mark_non_differentiable(ids2, valid2)
        return h2, a2, ids2, valid2

    @staticmethod
    def backward(ctx, g_h, g_a, _g_ids, _g_valid):  # noqa: D102
        ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b, ids2, valid2 = ctx.saved_tensors
        ref: OpTable = ctx.reference
        opts: StepOptions = ctx.opts
        need = ctx.needs_input_grad[6:14]
        diff = (alpha, h, w, w_h, b_h, theta, ln_w, ln_b)
        leaves = [t.detach().requires_grad_(bool(r)) for t, r in zip(diff, need, strict=True)]
        la, lh, lw, lwh, lbh, lth, llw, llb = leaves
        with torch.enable_grad():
            graph = dataclasses.replace(ctx.graph, w=lw)
            st = ActiveState(ids=ids, valid=valid, alpha=la, h=lh)
            cand = ref.propagate(
                st, graph, lwh, lbh, lth, gamma=opts.gamma, temperature=opts.temperature
            )
            a_inh = ref.inhibit(cand, graph, strength=opts.inhibition)
            row = rows_of(cand, ids2, valid2, graph.n_nodes)
            new = ref.update(cand, a_inh, st, ids2, row, valid2, llw, llb)
            wanted = [t for t, r in zip(leaves, need, strict=True) if r]
            grads = iter(
                torch.autograd.grad((new.h, new.alpha), wanted, (g_h, g_a), allow_unused=True)
                if wanted
                else ()
            )
        out = [next(grads) if r else None for r in need]
        return (None, None, None, None, None, None, *out)


def fused_step(
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
    reference: OpTable,
    tables: GraphTables | None = None,
) -> ActiveState:
    """:func:`rsgn.ops.step` as the fused kernels (same signature, same state); the
    ``reference`` table's own step where the kernels do not apply (:func:`fused_applies`).

    ``tables``: the graph's :func:`graph_tables` computed once by the caller for this graph
    (a program); None computes them here (training, where the graph changes every batch)."""
    if not fused_applies(method, state.h.dtype):
        return reference.step(
            state,
            graph,
            w_h,
            b_h,
            theta,
            ln_weight,
            ln_bias,
            gamma=gamma,
            temperature=temperature,
            inhibition=inhibition,
            cap=cap,
            eps=eps,
            method=method,
        )
    if tables is None:
        tables = graph_tables(graph)
    elif tables[0].shape != graph.in_idx.shape or tables[1].shape != graph.inh_idx.shape:
        raise ValueError(
            f"fused step: graph tables {tuple(tables[0].shape)} / {tuple(tables[1].shape)} are "
            f"not those of this graph {tuple(graph.in_idx.shape)} / {tuple(graph.inh_idx.shape)}"
        )
    opts = StepOptions(float(gamma), float(temperature), float(inhibition), int(cap), float(eps))
    h, a, ids, valid = FusedStep.apply(
        reference,
        graph,
        tables,
        opts,
        state.ids,
        state.valid,
        state.alpha,
        state.h,
        graph.w,
        w_h,
        b_h,
        theta,
        ln_weight,
        ln_bias,
    )
    return ActiveState(ids=ids, valid=valid, alpha=a, h=h)
