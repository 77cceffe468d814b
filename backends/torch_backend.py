"""The torch backend: the reference definition of every RSGN op (CPU or CUDA, differentiable).

Sparse by construction: only active nodes hold state (``ActiveState`` is ``[B, k_active, d]``),
messages flow only along the out-edges of active nodes (a CSR over sources), and no tensor of
size N x N or B x N x d is ever formed. Per-node *scalars* over ``[B, N]`` are used for the
exact active-set selection (O(N) integer work per step, 1-2 orders below the message work).
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from rsgn.backends.base import (
    ActiveState,
    Backend,
    Candidates,
    Capabilities,
    Graph,
    Program,
    Report,
)
from rsgn.backends.cost import CostLedger, load_energy_table
from rsgn.backends.selection import (
    mask_to_ids,
    radix_select_mask,
    radix_select_rows,
    segment_rank,
    statistical_mask,
    statistical_rows,
)
from rsgn.geometry import dist_from_parts

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.model import RSGN

_IGNITE_CHUNK_ELEMS = 1 << 24  # B*T*chunk distance evaluations per no-grad chunk


def out_csr(in_idx: torch.Tensor, in_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR over sources of the live in-edges: (ptr [N+1], flat edge ids sorted by source)."""
    n, k = in_idx.shape
    flat_src = in_idx.reshape(-1)
    live = in_mask.reshape(-1)
    edge_ids = torch.arange(n * k, device=in_idx.device)[live]
    src = flat_src[live]
    order = torch.argsort(src, stable=True)
    counts = torch.bincount(src, minlength=n)
    ptr = torch.zeros(n + 1, dtype=torch.int64, device=in_idx.device)
    ptr[1:] = counts.cumsum(0)
    return ptr, edge_ids[order]


def gather_out_edges(
    ptr: torch.Tensor, out_edge: torch.Tensor, src: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """All out-edges of the given sources: (flat edge ids [E], position in ``src`` [E])."""
    start = ptr[src]
    cnt = ptr[src + 1] - start
    owner = torch.repeat_interleave(torch.arange(src.numel(), device=src.device), cnt)
    first = torch.cumsum(cnt, 0) - cnt
    offs = torch.arange(owner.numel(), device=src.device) - first[owner]
    return out_edge[start[owner] + offs], owner


def _csr_matrix(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """A CSR matrix without torch's beta / invariant-check warnings (indices are ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class EdgeSpMM(torch.autograd.Function):
    """out[dst[e]] += w[e] * g[src[e]] over all edges e, plus a bias row: a sparse [M, S]
    matrix times g [S, d].

    Edges must arrive grouped by source (as :func:`gather_out_edges` yields them), with
    ``src_ptr`` the CSR row pointer of S^T over the ``S`` source rows. Forward is a CSR
    sparse-dense product S @ g (one stable sort of the destinations builds S); backward uses
    S^T (free, edges are source-major): grad_g = S^T @ grad_out, and the weight gradient
    grad_w[e] = <g[src[e]], grad_out[dst[e]]> is a sampled dense-dense product (SDDMM) on the
    pattern of S^T. Nothing of size E x d or M x S is materialised (``torch.sparse.mm``'s own
    backward forms a dense M x S matrix).
    """

    @staticmethod
    def forward(ctx, dst, src_ptr, w, g, bias, m):  # noqa: D102
        n_src = g.shape[0]
        src = torch.repeat_interleave(
            torch.arange(n_src, device=g.device), src_ptr[1:] - src_ptr[:-1]
        )
        order = torch.argsort(dst, stable=True)
        crow = torch.zeros(m + 1, dtype=torch.int64, device=g.device)
        crow[1:] = torch.bincount(dst, minlength=m).cumsum(0)
        s_mat = _csr_matrix(crow, src[order], w[order], (m, n_src))
        out = s_mat @ g if dst.numel() else g.new_zeros(m, g.shape[1])
        out.add_(bias)
        ctx.save_for_backward(dst, src_ptr, w, g)
        ctx.m = m
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        dst, src_ptr, w, g = ctx.saved_tensors
        grad_g = grad_w = grad_b = None
        grad_out = grad_out.contiguous()
        if ctx.needs_input_grad[4]:
            grad_b = grad_out.sum(0)
        if dst.numel() == 0:
            return None, None, torch.zeros_like(w), torch.zeros_like(g), grad_b, None
        shape = (g.shape[0], ctx.m)
        if ctx.needs_input_grad[3]:
            grad_g = _csr_matrix(src_ptr, dst, w, shape) @ grad_out
        if ctx.needs_input_grad[2]:
            pattern = _csr_matrix(src_ptr, dst, torch.zeros_like(w), shape)
            grad_w = torch.sparse.sampled_addmm(pattern, g, grad_out.T, beta=0.0).values()
        return None, None, grad_w, grad_g, grad_b, None


class RowNorm(torch.autograd.Function):
    r"""|h_r| = sqrt(sum_c h_rc^2) per row, with the gradient written out:
    d|h_r|/dh_rc = h_rc / |h_r| (0 where |h_r| = 0, the subgradient ``vector_norm`` takes).

    The forward is ``torch.linalg.vector_norm`` (same values); the backward is one scaled
    copy of h, where autograd's own formula runs four [M, d] passes (division, product, masked
    fill, fill): measured on one CPU thread at M = 16,320, d = 96, 2.9 ms against 6.2 to 7.1 ms
    for the forward and backward together.
    """

    @staticmethod
    def forward(ctx, h):  # noqa: D102
        n = torch.linalg.vector_norm(h, dim=-1)
        ctx.save_for_backward(h, n)
        return n

    @staticmethod
    def backward(ctx, grad_n):  # noqa: D102
        h, n = ctx.saved_tensors
        scale = torch.where(n > 0, grad_n / n, torch.zeros_like(n))
        return h * scale.unsqueeze(-1)


def row_norm(h: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last dimension of a 2-D tensor [M, d] -> [M] (see
    :class:`RowNorm`)."""
    return RowNorm.apply(h)


class TorchBackend(Backend):
    """Reference backend. ``energy_table`` names the per-event energy preset used for the
    modelled energy in reports (default: Horowitz 45 nm)."""

    name = "torch"

    def __init__(self, device: str | torch.device | None = None, preset: str | None = None) -> None:
        super().__init__()
        self.device = torch.device(device) if device is not None else None
        self.energy_table_name = preset or "electronic_45nm"
        load_energy_table(self.energy_table_name)  # unknown preset: fail now, naming it

    def capabilities(self) -> Capabilities:
        return Capabilities(
            differentiable=True,
            devices=("cpu", "cuda") if torch.cuda.is_available() else ("cpu",),
            metrics={
                "accuracy": "measured",
                "active_fraction": "measured",
                "latency": "measured (wall clock; CUDA-synchronised on GPU)",
                "energy_modelled": "modelled (counted events x Horowitz 45 nm per-event energy)",
                "energy_measured": "n/a: the torch backend reads no power counter",
            },
            notes="the reference definition; every other backend is tested against it",
        )

    # ---------------------------------------------------------------------------- hooks
    # The inner computations other backends replace (Triton kernels, optical read-outs); the
    # ops below call them, so a subclass overrides a hook, not a whole op.
    def edge_distances(
        self, x: torch.Tensor, a: torch.Tensor, in_idx: torch.Tensor
    ) -> torch.Tensor:
        """d_H(p_i, p_j) for every in-edge slot (i, s), j = in_idx[i, s]: [N, K]."""
        return dist_from_parts(x.unsqueeze(1), x[in_idx], a.unsqueeze(1), a[in_idx])

    @torch.no_grad()
    def nearest_spark(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """min over tokens of delta = |s_t - p_i|^2 / (a_s a_p) and its argmin: [B, N] each.

        |s - p|^2 = |s|^2 + |p|^2 - 2 s.p as one GEMM per chunk of nodes; used only to choose
        the nearest spark per node and the active set (exact distances follow for those).
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

    @staticmethod
    def ignition_key(dmin: torch.Tensor, method: str) -> torch.Tensor:
        """Selection key for ignition: -delta for the exact select; the log-distance domain
        (near-Gaussian) for statistical top-k."""
        return -dmin if method == "radix" else -torch.log(dmin.clamp_min(1e-30))

    def spark_distances(
        self, s_sel: torch.Tensor, a_sel: torch.Tensor, x_sel: torch.Tensor, a_nodes: torch.Tensor
    ) -> torch.Tensor:
        """Exact d_H between each selected node and the spark that lit it: [B, W]."""
        return dist_from_parts(s_sel, x_sel, a_sel, a_nodes)

    def message_sum(
        self,
        dst: torch.Tensor,
        src_ptr: torch.Tensor,
        w: torch.Tensor,
        g: torch.Tensor,
        bias: torch.Tensor,
        m: int,
    ) -> torch.Tensor:
        """h~ = sum over edges of w g[src] into row dst, plus bias (see :class:`EdgeSpMM`)."""
        return EdgeSpMM.apply(dst, src_ptr, w, g, bias, m)

    def soft_threshold(
        self,
        alpha_prev: torch.Tensor,
        htilde: torch.Tensor,
        theta: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
    ) -> torch.Tensor:
        """alpha = sigmoid((alpha_prev + gamma |h~| - theta) / T)."""
        norm = row_norm(htilde)
        return torch.sigmoid((alpha_prev + gamma * norm - theta) / temperature)

    def select_rows(
        self, scores: torch.Tensor, rows: torch.Tensor, n_rows: int, k: int, method: str
    ) -> torch.Tensor:
        """k-winners mask over a ragged row-sorted list ('radix' exact, 'stat' approximate)."""
        if method == "radix":
            return radix_select_rows(scores, rows, n_rows, k)
        if method == "stat":
            return statistical_rows(scores, rows, n_rows, k)
        raise ValueError(f"unknown selection method {method!r} (radix, stat)")

    # ---------------------------------------------------------------------------- graph
    def graph(
        self,
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
    ) -> Graph:
        """w_ji = sigmoid(u_i . v_j + hebb_ij) exp(-d_H(p_i, p_j)/tau) softplus(l_i - l_j + 1)."""
        n, k = in_idx.shape
        self.count_op("graph")
        d = self.edge_distances(x, a, in_idx)
        aff = (u.unsqueeze(1) * v[in_idx]).sum(-1) + hebb
        lvl = F.softplus(level.unsqueeze(1) - level[in_idx] + 1.0)
        w = torch.sigmoid(aff) * torch.exp(-d / tau) * lvl
        w = w * in_mask
        ptr, out_edge = out_csr(in_idx, in_mask)
        inh = in_mask & (d.detach() < inhibition_radius)
        k_inh = max(1, int(inh.sum(1).max()))
        first = torch.argsort((~inh).to(torch.int8), dim=1, stable=True)[:, :k_inh]
        inh_idx, inh_valid = in_idx.gather(1, first), inh.gather(1, first)
        e = n * k
        self.count("mac_fp32", e * (u.shape[1] + x.shape[1]))
        self.count("transcendental_fp32", e * 4)
        self.count("sram_word_32b", e * (u.shape[1] + x.shape[1] + 2))
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

    # ---------------------------------------------------------------------------- ignite
    def ignite(
        self,
        sparks: torch.Tensor,
        spark_a: torch.Tensor,
        graph: Graph,
        *,
        sigma: float,
        eps: float,
        cap: int,
        method: str,
    ) -> ActiveState:
        """alpha_i(0) = max_t exp(-d_H(s_t, p_i)^2 / (2 sigma^2)), top-``cap`` per sample.

        The max over tokens is taken on the monotone proxy delta = |s-p|^2/(a_s a_p) without
        gradient (chunked over nodes); the exact distance and its gradient are then evaluated
        only for the selected (sample, node, token) triples.
        """
        self.count_op("ignite")
        bsz, t, dsp = sparks.shape
        n = graph.n_nodes
        x, a = graph.x, graph.a
        dmin, tok = self.nearest_spark(sparks, spark_a, x, a)
        key = self.ignition_key(dmin, method)
        ids, valid = self._select_dense(key, cap, method)
        tsel = tok.gather(1, ids)
        s_sel = sparks[torch.arange(bsz, device=sparks.device).unsqueeze(1), tsel]  # [B,W,D]
        a_sel = spark_a.gather(1, tsel)
        d = self.spark_distances(s_sel, a_sel, x[ids], a[ids])
        alpha = torch.exp(-(d * d) / (2 * sigma * sigma))
        valid = valid & (alpha.detach() > eps)
        alpha = alpha * valid
        self.count("mac_fp32", bsz * t * n * (dsp + 1))
        self.count("add_fp32", bsz * t * n)  # min over tokens
        self.count("int_op_32b", bsz * n * 4)  # three histogram passes + compare
        self.count("transcendental_fp32", ids.numel() * 3)
        self.count("sram_word_32b", bsz * t * (dsp + 1) + n * (dsp + 1))
        return ActiveState(ids=ids, valid=valid, alpha=alpha, token=tsel)

    # ---------------------------------------------------------------------------- propagate
    def propagate(
        self,
        state: ActiveState,
        graph: Graph,
        w_h: torch.Tensor,
        b_h: torch.Tensor,
        theta: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
    ) -> Candidates:
        """One step over the active set A (sparse push along out-edges):

        h~_i = sum_{j in A, j->i} w_ji alpha_j (W_h h_j) + b_h   (= W_h m_i + b_h, W_h linear)
        alpha_i' = sigmoid((alpha_i + gamma |h~_i| - theta_i) / T)

        for every node i reached from A or in A. Nodes neither active nor reached stay silent.
        """
        self.count_op("propagate")
        bsz, width = state.ids.shape
        n = graph.n_nodes
        dev = state.ids.device
        d = state.h.shape[-1]
        flat_valid = state.valid.reshape(-1)
        act_rows = flat_valid.nonzero(as_tuple=True)[0]  # rows into [B*W]
        act_b = act_rows // width
        act_ids = state.ids.reshape(-1)[act_rows]
        g = (state.alpha.unsqueeze(-1) * (state.h @ w_h.T)).reshape(bsz * width, d)
        edges, owner = gather_out_edges(graph.out_ptr, graph.out_edge, act_ids)
        kslots = graph.in_idx.shape[1]
        dst = edges // kslots
        b_e = act_b[owner]
        # candidate set: every (sample, node) reached from A or in A, compacted through a
        # [B*N] scratch map (linear, sort-free)
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
        htilde = self.message_sum(inv_e, src_ptr, w_e, g, b_h, m)
        alpha_prev = torch.zeros(m, device=dev, dtype=g.dtype).index_put(
            (inv_a,), state.alpha.reshape(-1)[act_rows]
        )
        prev_row = torch.full((m,), -1, dtype=torch.int64, device=dev)
        prev_row[inv_a] = act_rows
        cand_b, cand_i = uniq // n, uniq % n
        alpha = self.soft_threshold(
            alpha_prev, htilde, theta[cand_i], gamma=gamma, temperature=temperature
        )
        na, ne = act_rows.numel(), edges.numel()
        self.count("mac_fp32", na * d * d + ne * d + m * d)
        self.count("sram_word_32b", ne * (d + 2) + na * d + d * d)
        self.count("int_op_32b", ne * 4)
        self.count("transcendental_fp32", 2 * m)
        return Candidates(
            batch=cand_b, node=cand_i, htilde=htilde, alpha=alpha, prev_row=prev_row, n_batch=bsz
        )

    # ---------------------------------------------------------------------------- inhibit
    def inhibit(self, cand: Candidates, graph: Graph, *, strength: float) -> torch.Tensor:
        """alpha_i <- alpha_i / (1 + beta * mean_{j in R(i)} alpha_j),
        R(i) = in-neighbours of i within the inhibition radius (hyperbolic)."""
        self.count_op("inhibit")
        if strength == 0:
            return cand.alpha
        n = graph.n_nodes
        bsz = cand.n_batch
        scratch = torch.zeros(bsz * n, device=cand.alpha.device, dtype=cand.alpha.dtype)
        scratch = scratch.index_put((cand.batch * n + cand.node,), cand.alpha)
        nb = graph.inh_idx[cand.node]  # [M, K_inh]
        nmask = graph.inh_valid[cand.node]
        vals = scratch[cand.batch.unsqueeze(1) * n + nb] * nmask
        cnt = nmask.sum(1).clamp_min(1)
        mean = vals.sum(1) / cnt
        m, k = nb.shape
        self.count("add_fp32", m * (k + 2))
        self.count("sram_word_32b", m * k)
        return cand.alpha / (1.0 + strength * mean)

    # ---------------------------------------------------------------------------- select
    def _select_dense(self, score: torch.Tensor, cap: int, method: str):
        if method == "radix":
            mask = radix_select_mask(score.detach(), cap)
            return mask_to_ids(mask, width=min(cap, score.shape[1]))
        if method == "stat":
            mask = statistical_mask(score.detach(), cap, torch.isfinite(score))
            return mask_to_ids(mask)
        raise ValueError(f"unknown selection method {method!r} (radix, stat)")

    def select(
        self,
        batch: torch.Tensor,
        node: torch.Tensor,
        score: torch.Tensor,
        n_batch: int,
        n_nodes: int,
        *,
        cap: int,
        eps: float,
        method: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """k-winners per sample among the candidate rows (sorted by sample, then node).

        ``radix``: exactly ``cap`` winners (fewer if fewer candidates), ties to the lower node
        id, by the sort-free radix select over the candidates only (O(M), not O(B N));
        ``stat``: statistical top-k (approximate counts). Winners with score <= eps are dropped.
        """
        self.count_op("select")
        dev = score.device
        width = min(cap, n_nodes)
        s = score.detach().float()
        mask = self.select_rows(s, batch, n_batch, cap, method) & (s > eps)
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
        self.count("int_op_32b", s.numel() * 8)
        return ids, row, valid

    # ---------------------------------------------------------------------------- update
    def update(
        self,
        cand: Candidates,
        alpha: torch.Tensor,
        prev: ActiveState,
        ids: torch.Tensor,
        row: torch.Tensor,
        valid: torch.Tensor,
        ln_weight: torch.Tensor,
        ln_bias: torch.Tensor,
    ) -> ActiveState:
        """h_i = LN(h~_i + h_i_prev) * alpha_i on the selected rows (h_prev = 0 if newly lit)."""
        self.count_op("update")
        d = cand.htilde.shape[-1]
        if cand.htilde.shape[0] == 0:  # silent network: an empty state, zero readout
            z = torch.zeros(*ids.shape, d, device=ids.device, dtype=cand.htilde.dtype)
            return ActiveState(ids=ids, valid=valid, alpha=z[..., 0] + 0 * ln_weight.sum(), h=z)
        r = row.clamp_min(0)
        ht = cand.htilde[r]  # [B, W, d]
        prow = cand.prev_row[r]
        hprev = prev.h.reshape(-1, d)[prow.clamp_min(0)] * (prow >= 0).unsqueeze(-1)
        a = alpha[r] * valid
        h = F.layer_norm(ht + hprev, (d,), ln_weight, ln_bias) * a.unsqueeze(-1)
        nv = int(valid.sum().item())
        self.count("add_fp32", nv * d * 6)
        self.count("sram_word_32b", nv * d * 3)
        return ActiveState(
            ids=torch.where(valid, ids, torch.zeros_like(ids)), valid=valid, alpha=a, h=h
        )

    # ---------------------------------------------------------------------------- readout
    def readout(
        self, state: ActiveState, w_o: torch.Tensor, b_o: torch.Tensor, *, normalise: bool
    ) -> torch.Tensor:
        """logits = W_o sum_i alpha_i h_i + b_o (sum over each sample's active set)."""
        self.count_op("readout")
        pooled = (state.alpha.unsqueeze(-1) * state.h).sum(1)
        if normalise:
            pooled = pooled / state.valid.sum(1, keepdim=True).clamp_min(1)
        nv = int(state.valid.sum().item())
        c, d = w_o.shape
        self.count("mac_fp32", nv * d + state.ids.shape[0] * c * d)
        self.count("sram_word_32b", nv * d + c * d)
        return pooled @ w_o.T + b_o

    # ---------------------------------------------------------------------------- helpers
    def prepare(self, model: RSGN) -> Program:
        return TorchProgram(self, model)


class TorchProgram(Program):
    """The model on the torch backend: eval mode, graph cached, costs counted per batch."""

    def __init__(self, backend: TorchBackend, model: RSGN) -> None:
        self.backend = backend
        self.model = model.eval()
        self.table = load_energy_table(backend.energy_table_name)
        dev = backend.device or next(model.parameters()).device
        self.model.to(dev)
        self.device = dev
        with torch.no_grad():
            self.graph = model.build_graph(backend)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, Report]:
        ledger = CostLedger(self.table)
        self.backend.ledger = ledger
        x = x.to(self.device)
        try:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            t0 = time.perf_counter()
            out = self.model(x, backend=self.backend, graph=self.graph)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            dt = time.perf_counter() - t0
        finally:
            self.backend.ledger = None
        ledger.op("input").add("dram_word_32b", x.numel())
        per_step = [float(f) for f in out.active_fraction_per_step]
        report = Report(
            backend=self.backend.name,
            n_samples=int(x.shape[0]),
            active_fraction=float(sum(per_step[1:]) / max(1, len(per_step) - 1)),
            active_fraction_per_step=per_step,
            ledger=ledger,
            latency_s=dt,
        )
        return out.logits, report
