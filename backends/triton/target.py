"""The Triton backend: the torch backend's op sequence with the hot inner loops as Triton
kernels (``rsgn.kernels``); everything without a kernel is inherited from :class:`TorchBackend`.

==========  =================================================================================
op          Triton kernel (reference: the torch backend)
==========  =================================================================================
graph       edge distances d_H(p_i, p_j) on the k-in-edge topology (``kernels.distance``,
            2 asinh form, backward w.r.t. positions and conformal factors)
ignite      the selection pass: min over tokens of delta and its argmin, fused
            (``kernels.ignite``), then the k-winners (``kernels.select``)
propagate   the message sum out[dst] += w g[src] + b_h (``kernels.spmm``, CSR pull, no atomics)
            and the fused |h~| + soft threshold (``kernels.gate``)
select      exact radix select / statistical top-k per sample (``kernels.select``)
==========  =================================================================================

Runs on CUDA, or on the CPU under Triton's interpreter (``TRITON_INTERPRET=1``; slow, for
tests). ``fast_tanh=True`` uses PTX ``tanh.approx.f32`` for the gate on CUDA (off by default:
not yet measured on a GPU).
"""

from __future__ import annotations

import dataclasses
import os

import torch

from rsgn.backends.base import ActiveState, Capabilities, Graph
from rsgn.backends.selection import mask_to_ids
from rsgn.backends.torch_backend import TorchBackend


class TritonBackend(TorchBackend):
    """Triton kernels for graph distances, ignition's selection pass, select, the message sum
    and the soft threshold; the torch backend for the rest."""

    name = "triton"

    def __init__(
        self,
        device: str | torch.device | None = None,
        preset: str | None = None,
        fast_tanh: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__(device=device, preset=preset)
        self.fast_tanh = bool(fast_tanh)
        self.fused = bool(fused)
        from rsgn.kernels import distance, gate, ignite, select, spmm, step

        self._k_distance, self._k_gate, self._k_ignite = distance, gate, ignite
        self._k_select, self._k_spmm, self._k_step = select, spmm, step

    @classmethod
    def available(cls) -> tuple[bool, str]:
        interp = os.environ.get("TRITON_INTERPRET", "0") == "1"
        if not (torch.cuda.is_available() or interp):
            return False, "needs a CUDA GPU, or TRITON_INTERPRET=1 to run the kernels on the CPU"
        try:
            import triton  # noqa: F401
        except ImportError as exc:
            return False, f"triton is not installed ({exc}); pip install 'triton>=3.0'"
        return True, ""

    def capabilities(self) -> Capabilities:
        caps = super().capabilities()
        caps.devices = ("cuda",) if torch.cuda.is_available() else ("cpu (TRITON_INTERPRET=1)",)
        caps.metrics["latency"] = "measured (wall clock; CUDA-synchronised on GPU)"
        caps.notes = (
            "Triton kernels for graph distances, ignition selection, select, message sum, "
            "soft threshold; other ops from the torch backend"
        )
        return caps

    # ---------------------------------------------------------------------------- hooks
    def edge_distances(
        self, x: torch.Tensor, a: torch.Tensor, in_idx: torch.Tensor
    ) -> torch.Tensor:
        """Edge distances from the distance kernel (2 asinh form, with backward)."""
        n, k = in_idx.shape
        rows = torch.arange(n, device=in_idx.device).unsqueeze(1).expand(n, k)
        return self._k_distance.pair_distance(x, a, rows, in_idx)

    @torch.no_grad()
    def nearest_spark(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused ignite kernel: min over tokens of delta and its argmin."""
        return self._k_ignite.ignite_min(sparks, spark_a, x, a)

    def message_sum(
        self,
        dst: torch.Tensor,
        src_ptr: torch.Tensor,
        w: torch.Tensor,
        g: torch.Tensor,
        bias: torch.Tensor,
        m: int,
    ) -> torch.Tensor:
        """The CSR-pull message-sum kernel (no atomics), with backward."""
        return self._k_spmm.edge_spmm(dst, src_ptr, w, g, bias, m)

    def soft_threshold(
        self,
        alpha_prev: torch.Tensor,
        htilde: torch.Tensor,
        theta: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
    ) -> torch.Tensor:
        """The fused |h~| + soft threshold kernel (PTX tanh on CUDA when ``fast_tanh``)."""
        return self._k_gate.soft_threshold(
            alpha_prev, htilde, theta, gamma=gamma, temperature=temperature, fast=self.fast_tanh
        )

    def select_rows(
        self, scores: torch.Tensor, rows: torch.Tensor, n_rows: int, k: int, method: str
    ) -> torch.Tensor:
        """Radix select / statistical top-k over the ragged candidate rows as kernels."""
        ptr = self._k_select.rows_ptr(rows, n_rows)
        if method == "radix":
            return self._k_select.radix_select_ragged(scores, ptr, k)
        if method == "stat":
            return self._k_select.statistical_select_ragged(scores.double(), ptr, k)
        raise ValueError(f"unknown selection method {method!r} (radix, stat)")

    def _select_dense(self, score: torch.Tensor, cap: int, method: str):
        if method == "radix":
            width = min(cap, score.shape[1])
            return self._k_select.radix_topk_dense(score.detach(), cap, float("-inf"), width)
        if method == "stat":
            mask = self._k_select.statistical_mask(score.detach(), cap)
            return mask_to_ids(mask)
        raise ValueError(f"unknown selection method {method!r} (radix, stat)")

    # ---------------------------------------------------------------------------- step
    def step(
        self,
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
    ) -> ActiveState:
        """The fused step (``kernels.step``): scores, inhibition, radix select and update in
        four kernels, no candidate list and no host sync. Falls back to the op-by-op
        decomposition (still on the kernels above) for statistical selection and float64."""
        if not self.fused or method != "radix" or state.h.dtype == torch.float64:
            return super().step(
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
        opts = dict(
            gamma=float(gamma),
            temperature=float(temperature),
            inhibition=float(inhibition),
            cap=int(cap),
            eps=float(eps),
        )
        h, a, ids, valid = _FusedStep.apply(
            self,
            graph,
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

    def _fused_forward(
        self, graph: Graph, opts: dict, ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b
    ):
        """The four launches of the fused step (no autograd); counts events when a ledger is
        attached (that needs a few host syncs; training runs without a ledger)."""
        ks = self._k_step
        tables = getattr(graph, "_fused_tables", None)
        if tables is None:
            tables = ks.graph_tables(graph.in_idx, graph.in_mask, graph.inh_idx, graph.inh_valid)
            object.__setattr__(graph, "_fused_tables", tables)
        src, inh = tables
        n = graph.n_nodes
        bsz, width = ids.shape
        d = h.shape[-1]
        slots = ks.slot_map(ids, valid, n)
        g = (alpha.unsqueeze(-1) * (h @ w_h.T)).reshape(bsz * width, d)
        counting = self.ledger is not None
        a_c, cand, par, hits, kept = ks.scores(
            src,
            w,
            slots,
            g,
            alpha,
            b_h,
            theta,
            opts["gamma"],
            opts["temperature"],
            opts["inhibition"],
            count=counting,
        )
        score = ks.inhibit(a_c, cand, inh, par)
        cap = opts["cap"]
        w2 = min(cap, n)
        new_ids, new_valid = self._k_select.radix_topk_dense(score, cap, opts["eps"], w2)
        h2, a2 = ks.update(
            new_ids, new_valid, score, src, w, slots, g, h, b_h, ln_w, ln_b, kept=kept
        )
        if counting:
            self._count_fused(valid, cand, hits, new_ids, new_valid, d, inh.shape[1], n, bsz)
        return h2.to(h.dtype), a2.to(alpha.dtype), new_ids, new_valid

    def _count_fused(self, valid, cand, hits, new_ids, new_valid, d, k_inh, n, bsz):
        """The events of the decomposition (same formulas as the torch ops), plus the fused
        step's recomputation of h~ for the winners (counted also when
        ``kernels.step.TUNING["STORE"]`` loads kept sums instead: the ledger models the
        default kernels)."""
        for op in ("propagate", "inhibit", "select", "update"):
            self.count_op(op)
        na = int(valid.sum())
        m = int(cand.sum())
        ne = int(hits.sum(dtype=torch.int64))
        nv = int(new_valid.sum())
        self.count("mac_fp32", na * d * d + ne * d + m * d)
        self.count("sram_word_32b", ne * (d + 2) + na * d + d * d)
        self.count("int_op_32b", ne * 4)
        self.count("transcendental_fp32", 2 * m)
        self.count("add_fp32", m * (k_inh + 2))
        self.count("sram_word_32b", m * k_inh)
        self.count("int_op_32b", bsz * n * 8)
        self.count("add_fp32", nv * d * 6)
        self.count("sram_word_32b", nv * d * 3)
        # recomputation of h~ for the winners (the price of not storing h~ per candidate):
        # one multiply-add of d per active in-edge of each winner
        ne_win = int((hits.gather(1, new_ids) * new_valid).sum(dtype=torch.int64))
        self.count("mac_fp32", ne_win * d)


def _rows_of(cand, ids, valid, n):
    """Row of each (sample, winner) in the candidate list (sorted by sample, node), or -1."""
    key = cand.batch * n + cand.node
    q = torch.arange(ids.shape[0], device=ids.device).unsqueeze(1) * n + ids
    pos = torch.searchsorted(key, q.reshape(-1)).reshape(ids.shape)
    return torch.where(valid, pos.clamp_max(max(0, key.numel() - 1)), torch.full_like(pos, -1))


class _FusedStep(torch.autograd.Function):
    """Forward: the fused kernels. Backward: the reference decomposition recomputed on the same
    winners (the torch backend's propagate / inhibit / update through this backend's hooks),
    differentiated: exact gradients of the reference, nothing stored but inputs and winners."""

    @staticmethod
    def forward(ctx, be, graph, opts, ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b):  # noqa: D102
        with torch.no_grad():
            h2, a2, ids2, valid2 = be._fused_forward(
                graph, opts, ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b
            )
        ctx.be, ctx.graph, ctx.opts = be, graph, opts
        ctx.save_for_backward(ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b, ids2, valid2)
        ctx.mark_non_differentiable(ids2, valid2)
        return h2, a2, ids2, valid2

    @staticmethod
    def backward(ctx, g_h, g_a, _g_ids, _g_valid):  # noqa: D102
        ids, valid, alpha, h, w, w_h, b_h, theta, ln_w, ln_b, ids2, valid2 = ctx.saved_tensors
        be, opts = ctx.be, ctx.opts
        diff = [alpha, h, w, w_h, b_h, theta, ln_w, ln_b]
        need = ctx.needs_input_grad[5:13]
        leaves = [t.detach().requires_grad_(bool(r)) for t, r in zip(diff, need, strict=True)]
        la, lh, lw, lwh, lbh, lth, llw, llb = leaves
        ledger, be.ledger = be.ledger, None
        try:
            with torch.enable_grad():
                graph = dataclasses.replace(ctx.graph, w=lw)
                st = ActiveState(ids=ids, valid=valid, alpha=la, h=lh)
                cand = TorchBackend.propagate(
                    be,
                    st,
                    graph,
                    lwh,
                    lbh,
                    lth,
                    gamma=opts["gamma"],
                    temperature=opts["temperature"],
                )
                a_inh = TorchBackend.inhibit(be, cand, graph, strength=opts["inhibition"])
                row = _rows_of(cand, ids2, valid2, graph.n_nodes)
                new = TorchBackend.update(be, cand, a_inh, st, ids2, row, valid2, llw, llb)
                wanted = [t for t, r in zip(leaves, need, strict=True) if r]
                grads = iter(
                    torch.autograd.grad((new.h, new.alpha), wanted, (g_h, g_a), allow_unused=True)
                    if wanted
                    else ()
                )
        finally:
            be.ledger = ledger
        out = [next(grads) if r else None for r in need]
        return (None, None, None, None, None, *out)
