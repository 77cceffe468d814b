"""Poincaré distance between gathered pairs, float32-accurate form.

    d_e = 2 asinh( |x[i_e] - x[j_e]| / sqrt(a[i_e] a[j_e]) ),   a = 1 - |x|^2 (precomputed)

Reference: ``rsgn.geometry.dist_from_parts`` on ``x[i], x[j], a[i], a[j]``. Gradients, with
r = |x_i - x_j|, q = sqrt(a_i a_j), s = r / q, g = dL/dd:

    dd/ds   = 2 / sqrt(1 + s^2)
    dL/dx_i = g dd/ds (x_i - x_j) / (r q)   (0 at r = 0, the norm's subgradient), dL/dx_j = -it
    dL/da_i = -g dd/ds s / (2 a_i),         dL/da_j = -g dd/ds s / (2 a_j)

The backward scatters into ``grad_x [N, D]`` and ``grad_a [N]`` with atomic adds.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import asinh, check_device, compute_dtype, next_pow2

_BLOCK_E = 64


@triton.jit
def _pair_parts(x_ptr, i, j, emask, D, BLOCK_D: tl.constexpr):
    offs_d = tl.arange(0, BLOCK_D)
    m2 = emask[:, None] & (offs_d[None, :] < D)
    xi = tl.load(x_ptr + i[:, None] * D + offs_d[None, :], mask=m2, other=0.0)
    xj = tl.load(x_ptr + j[:, None] * D + offs_d[None, :], mask=m2, other=0.0)
    diff = xi - xj
    return diff, offs_d, m2


@triton.jit
def _dist_fwd_kernel(
    x_ptr, a_ptr, i_ptr, j_ptr, out_ptr, E, D, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr
):
    pid = tl.program_id(0)
    offs_e = pid * BLOCK_E + tl.arange(0, BLOCK_E)
    emask = offs_e < E
    i = tl.load(i_ptr + offs_e, mask=emask, other=0)
    j = tl.load(j_ptr + offs_e, mask=emask, other=0)
    diff, offs_d, m2 = _pair_parts(x_ptr, i, j, emask, D, BLOCK_D)
    r = tl.sqrt(tl.sum(diff * diff, axis=1))
    ai = tl.load(a_ptr + i, mask=emask, other=1.0)
    aj = tl.load(a_ptr + j, mask=emask, other=1.0)
    s = r / tl.sqrt(ai * aj)
    tl.store(out_ptr + offs_e, 2.0 * asinh(s), mask=emask)


@triton.jit
def _dist_bwd_kernel(
    x_ptr,
    a_ptr,
    i_ptr,
    j_ptr,
    go_ptr,
    gx_ptr,
    ga_ptr,
    E,
    D,
    BLOCK_E: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_e = pid * BLOCK_E + tl.arange(0, BLOCK_E)
    emask = offs_e < E
    i = tl.load(i_ptr + offs_e, mask=emask, other=0)
    j = tl.load(j_ptr + offs_e, mask=emask, other=0)
    diff, offs_d, m2 = _pair_parts(x_ptr, i, j, emask, D, BLOCK_D)
    r = tl.sqrt(tl.sum(diff * diff, axis=1))
    ai = tl.load(a_ptr + i, mask=emask, other=1.0)
    aj = tl.load(a_ptr + j, mask=emask, other=1.0)
    q = tl.sqrt(ai * aj)
    s = r / q
    g = tl.load(go_ptr + offs_e, mask=emask, other=0.0)
    gs = g * 2.0 / tl.sqrt(1.0 + s * s)  # dL/ds
    rq = r * q
    coef = tl.where(r > 0, gs / tl.where(r > 0, rq, 1.0), 0.0)
    gxi = coef[:, None] * diff
    tl.atomic_add(gx_ptr + i[:, None] * D + offs_d[None, :], gxi, mask=m2)
    tl.atomic_add(gx_ptr + j[:, None] * D + offs_d[None, :], -gxi, mask=m2)
    tl.atomic_add(ga_ptr + i, -gs * s / (2.0 * ai), mask=emask)
    tl.atomic_add(ga_ptr + j, -gs * s / (2.0 * aj), mask=emask)


def _prep(x, a, i, j):
    check_device(x, a, i, j)
    cd = compute_dtype(x.dtype)
    return (
        x.detach().to(cd).contiguous(),
        a.detach().to(cd).contiguous(),
        i.reshape(-1).to(torch.int64).contiguous(),
        j.reshape(-1).to(torch.int64).contiguous(),
    )


def distance_forward(
    x: torch.Tensor, a: torch.Tensor, i: torch.Tensor, j: torch.Tensor
) -> torch.Tensor:
    """Launcher: d [E] for the pairs (i[e], j[e]) (no autograd)."""
    xc, ac, ic, jc = _prep(x, a, i, j)
    e, d = ic.numel(), xc.shape[1]
    out = torch.empty(e, device=x.device, dtype=xc.dtype)
    if e:
        _dist_fwd_kernel[(triton.cdiv(e, _BLOCK_E),)](
            xc, ac, ic, jc, out, e, d, BLOCK_E=_BLOCK_E, BLOCK_D=next_pow2(d)
        )
    return out.to(x.dtype)


def distance_backward(
    x: torch.Tensor, a: torch.Tensor, i: torch.Tensor, j: torch.Tensor, grad_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launcher: (grad_x [N, D], grad_a [N]) for dL/dd = ``grad_out`` [E]."""
    xc, ac, ic, jc = _prep(x, a, i, j)
    e, d = ic.numel(), xc.shape[1]
    gx = torch.zeros_like(xc)
    ga = torch.zeros_like(ac)
    if e:
        go = grad_out.reshape(-1).to(xc.dtype).contiguous()
        _dist_bwd_kernel[(triton.cdiv(e, _BLOCK_E),)](
            xc, ac, ic, jc, go, gx, ga, e, d, BLOCK_E=_BLOCK_E, BLOCK_D=next_pow2(d)
        )
    return gx.to(x.dtype), ga.to(a.dtype)


class PoincarePairDistance(torch.autograd.Function):
    """d = 2 asinh(|x[i] - x[j]| / sqrt(a[i] a[j])) with gradients w.r.t. ``x`` and ``a``."""

    @staticmethod
    def forward(ctx, x, a, i, j):  # noqa: D102
        ctx.save_for_backward(x, a, i, j)
        ctx.shape = i.shape
        return distance_forward(x, a, i, j).view(i.shape)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, a, i, j = ctx.saved_tensors
        gx, ga = distance_backward(x, a, i, j, grad_out)
        return (
            gx if ctx.needs_input_grad[0] else None,
            ga if ctx.needs_input_grad[1] else None,
            None,
            None,
        )


def pair_distance(
    x: torch.Tensor, a: torch.Tensor, i: torch.Tensor, j: torch.Tensor
) -> torch.Tensor:
    """Poincaré distance of the pairs (x[i], x[j]) [same shape as ``i``], differentiable."""
    return PoincarePairDistance.apply(x, a, i, j)


def pair_distance_reference(
    x: torch.Tensor, a: torch.Tensor, i: torch.Tensor, j: torch.Tensor
) -> torch.Tensor:
    """The torch reference (``rsgn.geometry.dist_from_parts`` on gathered rows)."""
    diff = torch.linalg.vector_norm(x[i] - x[j], dim=-1)
    return 2.0 * torch.asinh(diff / torch.sqrt(a[i] * a[j]))
