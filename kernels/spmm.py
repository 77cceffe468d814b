"""The edge message sum of a propagation step, a sparse [M, S] matrix times g [S, d]:

    out[dst[e]] += w[e] * g[src[e]]   over all edges e,   then out += bias

Forward: CSR row-parallel ("pull") over destinations, one program per (destination row, block
of columns), accumulating in registers: no atomics, deterministic. The edges arrive grouped by
source (``src_ptr`` is the CSR pointer over the ``S`` source rows, as
``rsgn.sparse.EdgeSpMM`` takes them); the launcher builds the destination CSR
with one stable sort.

Backward (same contract as ``EdgeSpMM``):
    grad_g = S^T @ grad_out       the same CSR kernel on the source-major edge order (free)
    grad_w[e] = <g[src[e]], grad_out[dst[e]]>     a per-edge SDDMM kernel
    grad_bias = sum of grad_out's rows
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import check_device, compute_dtype, next_pow2

_BLOCK_E = 16
_MAX_BLOCK_D = 128


@triton.jit
def _csr_spmm_kernel(
    ptr_ptr,
    col_ptr,
    val_ptr,
    g_ptr,
    bias_ptr,
    out_ptr,
    D,
    HAS_BIAS: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    start = tl.load(ptr_ptr + row)
    end = tl.load(ptr_ptr + row + 1)
    acc = tl.zeros([BLOCK_D], dtype=out_ptr.dtype.element_ty)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        emask = offs_e < end
        col = tl.load(col_ptr + offs_e, mask=emask, other=0)
        w = tl.load(val_ptr + offs_e, mask=emask, other=0.0)
        g = tl.load(
            g_ptr + col[:, None] * D + offs_d[None, :],
            mask=emask[:, None] & dmask[None, :],
            other=0.0,
        )
        acc += tl.sum(w[:, None] * g, axis=0)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_d, mask=dmask, other=0.0)
    tl.store(out_ptr + row * D + offs_d, acc, mask=dmask)


@triton.jit
def _sddmm_kernel(
    src_ptr, dst_ptr, g_ptr, go_ptr, out_ptr, E, D, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr
):
    pid = tl.program_id(0)
    offs_e = pid * BLOCK_E + tl.arange(0, BLOCK_E)
    emask = offs_e < E
    src = tl.load(src_ptr + offs_e, mask=emask, other=0)
    dst = tl.load(dst_ptr + offs_e, mask=emask, other=0)
    acc = tl.zeros([BLOCK_E], dtype=out_ptr.dtype.element_ty)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        m2 = emask[:, None] & (offs_d[None, :] < D)
        g = tl.load(g_ptr + src[:, None] * D + offs_d[None, :], mask=m2, other=0.0)
        go = tl.load(go_ptr + dst[:, None] * D + offs_d[None, :], mask=m2, other=0.0)
        acc += tl.sum(g * go, axis=1)
    tl.store(out_ptr + offs_e, acc, mask=emask)


def csr_spmm(
    ptr: torch.Tensor,
    col: torch.Tensor,
    val: torch.Tensor,
    g: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Launcher: out [rows, d] = CSR(ptr, col, val) @ g (+ bias)."""
    check_device(ptr, col, val, g)
    rows = ptr.numel() - 1
    d = g.shape[1]
    cd = compute_dtype(g.dtype)
    gc = g.detach().to(cd).contiguous()
    out = torch.empty(rows, d, device=g.device, dtype=cd)
    if rows == 0 or d == 0:
        return out
    block_d = min(_MAX_BLOCK_D, next_pow2(d))
    bias_c = bias.detach().to(cd).contiguous() if bias is not None else out
    _csr_spmm_kernel[(rows, triton.cdiv(d, block_d))](
        ptr.to(torch.int64).contiguous(),
        col.to(torch.int64).contiguous(),
        val.detach().to(cd).contiguous(),
        gc,
        bias_c,
        out,
        d,
        HAS_BIAS=bias is not None,
        BLOCK_E=_BLOCK_E,
        BLOCK_D=block_d,
    )
    return out


def sddmm(
    src: torch.Tensor, dst: torch.Tensor, g: torch.Tensor, grad_out: torch.Tensor
) -> torch.Tensor:
    """Launcher: v[e] = <g[src[e]], grad_out[dst[e]]> [E]."""
    check_device(src, dst, g, grad_out)
    e = src.numel()
    cd = compute_dtype(g.dtype)
    out = torch.empty(e, device=g.device, dtype=cd)
    if e == 0:
        return out
    d = g.shape[1]
    block_e = 32
    _sddmm_kernel[(triton.cdiv(e, block_e),)](
        src.to(torch.int64).contiguous(),
        dst.to(torch.int64).contiguous(),
        g.detach().to(cd).contiguous(),
        grad_out.detach().to(cd).contiguous(),
        out,
        e,
        d,
        BLOCK_E=block_e,
        BLOCK_D=min(_MAX_BLOCK_D, next_pow2(d)),
    )
    return out


def _src_of_edges(src_ptr: torch.Tensor) -> torch.Tensor:
    n_src = src_ptr.numel() - 1
    return torch.repeat_interleave(
        torch.arange(n_src, device=src_ptr.device), src_ptr[1:] - src_ptr[:-1]
    )


class TritonEdgeSpMM(torch.autograd.Function):
    """Drop-in for ``EdgeSpMM``: ``apply(dst, src_ptr, w, g, bias, m) -> out [m, d]``."""

    @staticmethod
    def forward(ctx, dst, src_ptr, w, g, bias, m):  # noqa: D102
        src = _src_of_edges(src_ptr)
        order = torch.argsort(dst, stable=True)
        crow = torch.zeros(m + 1, dtype=torch.int64, device=g.device)
        crow[1:] = torch.bincount(dst, minlength=m).cumsum(0)
        out = csr_spmm(crow, src[order], w[order], g, bias).to(g.dtype)
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
        if ctx.needs_input_grad[3]:
            grad_g = csr_spmm(src_ptr, dst, w, grad_out).to(g.dtype)
        if ctx.needs_input_grad[2]:
            grad_w = sddmm(_src_of_edges(src_ptr), dst, g, grad_out).to(w.dtype)
        return None, None, grad_w, grad_g, grad_b, None


def edge_spmm(
    dst: torch.Tensor,
    src_ptr: torch.Tensor,
    w: torch.Tensor,
    g: torch.Tensor,
    bias: torch.Tensor | None,
    m: int,
) -> torch.Tensor:
    """out[dst[e]] += w[e] g[src[e]] (+ bias), differentiable in ``w``, ``g`` and ``bias``."""
    return TritonEdgeSpMM.apply(dst, src_ptr, w, g, bias, m)


def edge_spmm_reference(
    dst: torch.Tensor,
    src_ptr: torch.Tensor,
    w: torch.Tensor,
    g: torch.Tensor,
    bias: torch.Tensor,
    m: int,
) -> torch.Tensor:
    """Torch reference: index_add of the materialised messages (small sizes only)."""
    src = _src_of_edges(src_ptr)
    out = torch.zeros(m, g.shape[1], dtype=g.dtype, device=g.device)
    out = out.index_add(0, dst, w.unsqueeze(1) * g[src])
    return out + bias
