"""Sparse building blocks of the RSGN ops: the out-edge CSR, edge gathers, the edge
message sum as a sparse-dense product with a hand-written backward, and the row norm.

Nothing here forms an N x N or E x d tensor; every function takes and returns tensors only.
"""

from __future__ import annotations

import warnings

import torch


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


def edge_message_sum(
    dst: torch.Tensor,
    src_ptr: torch.Tensor,
    w: torch.Tensor,
    g: torch.Tensor,
    bias: torch.Tensor,
    m: int,
) -> torch.Tensor:
    """h~[r] = bias + sum over edges e with dst[e] = r of w[e] g[src(e)] (see :class:`EdgeSpMM`);
    ``g`` [S, d] source rows, edges grouped by source with CSR pointer ``src_ptr`` [S + 1]."""
    return EdgeSpMM.apply(dst, src_ptr, w, g, bias, m)
