"""The torch target's compiled CPU op table: :mod:`rsgn.ops` with the propagation step and the
ignition select replaced by numba kernels (:mod:`rsgn.kernels.cpu_step`), forward and
backward, as ``torch.autograd.Function`` s. The reference functions stay the definition and the
test oracle (``tests/test_cpu_step.py``: forward, every gradient and the exact winners over odd
shapes).

===============  ==================================================================  ==========
primitive        kernel                                                              reference
===============  ==================================================================  ==========
step             propagate -> inhibit -> select -> update fused, one sample per      ops.step
                 thread; backward recomputes the touched rows and writes the chain
                 rule out (``cpu_step.step_forward`` / ``step_backward``)
select_dense     exact top-cap per sample, ties to the lower index                   ops.select
                 (``cpu_step.select_dense``)                                         _dense
===============  ==================================================================  ==========

Where the kernels do not apply (:func:`fused_applies`: CUDA tensors, float64, statistical
selection) the reference op runs. Why numba and not ``torch.compile``: the step's shapes are
data dependent (candidate and edge counts change every step); compiled with
``torch.compile(ops.step, dynamic=True)`` it took 171 s to compile on the 2-core CI machine,
broke the graph at the sparse CSR product, and ran the N = 256 step at 0.27 s against 0.33 s
eager (forward + backward, loaded machine): no gain worth the compile time
(``studies/cpu_compiled/README.md``).
"""

from __future__ import annotations

import os
from functools import partial

import numpy as np
import torch

from rsgn import ops
from rsgn.ops import OpTable
from rsgn.state import ActiveState, Graph

LN_EPS = 1e-5
"""LayerNorm epsilon of :func:`rsgn.ops.update` (``F.layer_norm``'s default)."""


def _kernels():
    """The numba kernels (imported on first use: ``import rsgn`` does not import numba), with
    numba's thread count set to torch's.

    numba's threading layer is its own ``workqueue`` unless ``NUMBA_THREADING_LAYER`` says
    otherwise: its ``omp`` layer loads a second OpenMP runtime beside torch's, whose idle
    threads spin against torch's ops (measured on 2 cores: the N = 256 train step went from
    0.12 s with ``workqueue`` to 0.4-0.9 s, growing step by step, with ``omp``).
    """
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    from rsgn.kernels import cpu_ignite, cpu_step

    want = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)
    return cpu_step, cpu_ignite


def _per_chunk(n_batch: int) -> int:
    """Samples per parallel chunk of a kernel: about four chunks per numba thread (scratch is
    allocated per chunk)."""
    import numba

    return max(1, n_batch // (4 * numba.get_num_threads()))


def _max_candidates(graph: Graph, width: int) -> int:
    """A bound on a sample's candidates: its active nodes and their out-neighbours."""
    deg = int((graph.out_ptr[1:] - graph.out_ptr[:-1]).max()) if graph.n_nodes else 0
    return max(1, min(graph.n_nodes, width * (1 + deg)))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def fused_applies(method: str, *tensors: torch.Tensor) -> bool:
    """Whether the kernels run: exact radix selection on float32 CPU tensors."""
    return method == "radix" and all(
        t.device.type == "cpu" and (not t.is_floating_point() or t.dtype == torch.float32)
        for t in tensors
    )


class CpuFusedStep(torch.autograd.Function):
    """h', alpha', ids', valid' = the fused step (``cpu_step.step_forward``) of the state
    (ids, valid, alpha, h) with messages g = alpha (W_h h) (computed by the caller, so W_h's
    gradient is torch's); backward: ``cpu_step.step_backward`` (recompute the touched rows,
    chain rule written out) and a serial reduction of the per-sample records."""

    @staticmethod
    def forward(ctx, graph, hp, ids, valid, g, alpha, h, w, b_h, theta, ln_w, ln_b):  # noqa: D102
        k = _kernels()[0]
        bsz = ids.shape[0]
        n = graph.n_nodes
        d = g.shape[-1]
        width = min(hp["cap"], n)
        out_ids = torch.zeros(bsz, width, dtype=torch.int64)
        out_valid = torch.zeros(bsz, width, dtype=torch.bool)
        out_alpha = torch.zeros(bsz, width, dtype=g.dtype)
        out_h = torch.zeros(bsz, width, d, dtype=g.dtype)
        k_slots = graph.in_idx.shape[1]
        k.step_forward(
            _np(ids),
            _np(valid),
            _np(alpha),
            _np(g),
            _np(h),
            _np(graph.in_idx),
            _np(graph.inh_idx),
            _np(graph.inh_valid),
            _np(graph.out_ptr),
            _np(graph.out_edge // k_slots),
            _np(w.reshape(-1)[graph.out_edge]),
            _np(b_h),
            _np(theta),
            _np(ln_w),
            _np(ln_b),
            hp["gamma"],
            hp["temperature"],
            hp["inhibition"],
            hp["cap"],
            np.float32(hp["eps"]),
            LN_EPS,
            out_ids.numpy(),
            out_valid.numpy(),
            out_alpha.numpy(),
            out_h.numpy(),
            _per_chunk(bsz),
            _max_candidates(graph, ids.shape[1]),
        )
        ctx.graph = (graph.in_idx, graph.in_mask, graph.inh_idx, graph.inh_valid)
        ctx.hp = hp
        ctx.save_for_backward(
            ids, valid, g, alpha, h, w, b_h, theta, ln_w, ln_b, out_ids, out_valid
        )
        ctx.mark_non_differentiable(out_ids, out_valid)
        return out_h, out_alpha, out_ids, out_valid

    @staticmethod
    def backward(ctx, grad_h, grad_alpha, _g_ids, _g_valid):  # noqa: D102
        k = _kernels()[0]
        ids, valid, g, alpha, h, w, b_h, theta, ln_w, ln_b, out_ids, out_valid = ctx.saved_tensors
        in_idx, in_mask, inh_idx, inh_valid = ctx.graph
        hp = ctx.hp
        bsz, width = ids.shape
        n, k_slots = in_idx.shape
        d = g.shape[-1]
        if grad_h is None:
            grad_h = torch.zeros_like(out_ids, dtype=g.dtype).unsqueeze(-1).expand(-1, -1, d)
        if grad_alpha is None:
            grad_alpha = torch.zeros_like(out_ids, dtype=g.dtype)
        npa = [_np(t) for t in (ids, valid, out_ids, out_valid, in_idx, in_mask, inh_idx)]
        ids_n, valid_n, oid_n, oval_n, in_idx_n, in_mask_n, inh_idx_n = npa
        inh_valid_n = _np(inh_valid)
        counts = np.zeros((bsz, 2), np.int64)
        k.backward_counts(
            ids_n, valid_n, oid_n, oval_n, in_idx_n, in_mask_n, inh_idx_n, inh_valid_n, counts
        )
        t_off = np.zeros(bsz + 1, np.int64)
        e_off = np.zeros(bsz + 1, np.int64)
        np.cumsum(counts[:, 0], out=t_off[1:])
        np.cumsum(counts[:, 1], out=e_off[1:])
        f64 = np.float64
        g_alpha = torch.zeros(bsz, width, dtype=g.dtype)
        g_hprev = torch.zeros(bsz, width, d, dtype=g.dtype)
        g_g = torch.zeros(bsz, width, d, dtype=g.dtype)
        theta_node = np.empty(t_off[-1], np.int64)
        theta_val = np.empty(t_off[-1], f64)
        edge_id = np.empty(e_off[-1], np.int64)
        edge_val = np.empty(e_off[-1], np.float32)
        g_bh = np.zeros((bsz, d), f64)
        g_lnw = np.zeros((bsz, d), f64)
        g_lnb = np.zeros((bsz, d), f64)
        k.step_backward(
            ids_n,
            valid_n,
            _np(alpha),
            _np(g),
            _np(h),
            in_idx_n,
            in_mask_n,
            _np(w),
            inh_idx_n,
            inh_valid_n,
            _np(b_h),
            _np(theta),
            _np(ln_w),
            _np(ln_b),
            hp["gamma"],
            hp["temperature"],
            hp["inhibition"],
            LN_EPS,
            oid_n,
            oval_n,
            _np(grad_h),
            _np(grad_alpha),
            counts,
            t_off,
            e_off,
            g_alpha.numpy(),
            g_hprev.numpy(),
            g_g.numpy(),
            theta_node,
            theta_val,
            edge_id,
            edge_val,
            g_bh,
            g_lnw,
            g_lnb,
            _per_chunk(bsz),
        )
        g_theta = np.zeros(n, f64)
        g_w = np.zeros(n * k_slots, f64)
        k.reduce_records(theta_node, theta_val, edge_id, edge_val, g_theta, g_w)
        dt = g.dtype

        def back(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(dt)

        return (
            None,
            None,
            None,
            None,
            g_g,
            g_alpha,
            g_hprev,
            back(g_w).view(n, k_slots),
            back(g_bh.sum(0)),
            back(g_theta),
            back(g_lnw.sum(0)),
            back(g_lnb.sum(0)),
        )


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
    reference: OpTable = ops.TABLE,
) -> ActiveState:
    """:func:`rsgn.ops.step` as the numba kernels (same signature, same state); the
    ``reference`` table's step where they do not apply (:func:`fused_applies`)."""
    if not fused_applies(method, state.h, graph.w, w_h):
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
    g = state.alpha.unsqueeze(-1) * (state.h @ w_h.T)  # as ops.propagate: W_h before the sum
    hp = {
        "gamma": float(gamma),
        "temperature": float(temperature),
        "inhibition": float(inhibition),
        "cap": int(cap),
        "eps": float(eps),
    }
    h, a, ids, valid = CpuFusedStep.apply(
        graph,
        hp,
        state.ids,
        state.valid,
        g,
        state.alpha,
        state.h,
        graph.w,
        b_h,
        theta,
        ln_weight,
        ln_bias,
    )
    return ActiveState(ids=ids, valid=valid, alpha=a, h=h)


def select_dense(score: torch.Tensor, cap: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rsgn.ops.select_dense` by the kernel for 'radix' on the CPU: exactly min(cap, N)
    winners per row, ties to the lower index, ids ascending; the reference otherwise."""
    if method != "radix" or score.device.type != "cpu":
        return ops.select_dense(score, cap, method)
    bsz, n = score.shape
    width = min(cap, n)
    ids = torch.zeros(bsz, width, dtype=torch.int64)
    _kernels()[0].select_dense(_np(score.float()), int(cap), ids.numpy())
    return ids, torch.ones(bsz, width, dtype=torch.bool)


@torch.no_grad()
def nearest_spark(
    sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rsgn.ops.nearest_spark` (min over tokens of |s_t - p_i|^2 / (a_s a_p) and its
    argmin, [B, N] each) by the kernel on float32 CPU tensors; the reference otherwise."""
    if not fused_applies("radix", sparks, x):
        return ops.nearest_spark(sparks, spark_a, x, a)
    bsz, n = sparks.shape[0], x.shape[0]
    dmin = torch.empty(bsz, n, dtype=sparks.dtype)
    tok = torch.empty(bsz, n, dtype=torch.int64)
    _kernels()[1].nearest_spark(
        _np(sparks), _np(spark_a), _np(x.T), _np(a), dmin.numpy(), tok.numpy()
    )
    return dmin, tok


def compiled_table() -> OpTable:
    """:func:`rsgn.ops.make_table` with the kernels above (the reference ops elsewhere)."""
    return ops.make_table(
        nearest_spark=nearest_spark,
        select_dense=select_dense,
        fused_step=partial(fused_step, reference=ops.TABLE),
    )
