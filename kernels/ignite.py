"""Ignition's selection pass, fused: for every (sample b, node i) the nearest spark by the
monotone proxy of the hyperbolic distance,

    delta_min[b, i] = min_t |s_bt - p_i|^2 / (a_bt a_i),   tok[b, i] = argmin_t (first on ties)

in one kernel that streams the T sparks of a sample past a tile of nodes (no [B, T, N]
tensor). The difference form |s - p|^2 is used (not |s|^2 + |p|^2 - 2 s.p), so small
distances keep full relative accuracy. No gradient: the exact distance of the chosen triples is
recomputed differentiably afterwards (d_H = 2 asinh(sqrt(delta))).

Reference: :func:`ignite_min_reference` (``rsgn.geometry.delta_from_parts`` + ``min``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import check_device, compute_dtype, next_pow2

_BLOCK_N = 64


@triton.jit
def _ignite_min_kernel(
    s_ptr,
    sa_ptr,
    x_ptr,
    a_ptr,
    dmin_ptr,
    tok_ptr,
    T,
    N,
    D,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(1)
    pid_n = tl.program_id(0)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    nmask = offs_n < N
    dmask = offs_d < D
    p = tl.load(
        x_ptr + offs_n[:, None] * D + offs_d[None, :],
        mask=nmask[:, None] & dmask[None, :],
        other=0.0,
    )
    best = tl.full([BLOCK_N], float("inf"), dtype=p.dtype)
    best_t = tl.zeros([BLOCK_N], dtype=tl.int64)
    for t in range(0, T):
        s = tl.load(s_ptr + (b * T + t) * D + offs_d, mask=dmask, other=0.0)
        sa = tl.load(sa_ptr + b * T + t)
        diff = p - s[None, :]
        dl = tl.sum(diff * diff, axis=1) / sa
        better = dl < best
        best = tl.where(better, dl, best)
        best_t = tl.where(better, t, best_t)
    a = tl.load(a_ptr + offs_n, mask=nmask, other=1.0)
    tl.store(dmin_ptr + b * N + offs_n, best / a, mask=nmask)
    tl.store(tok_ptr + b * N + offs_n, best_t, mask=nmask)


def ignite_min(
    sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launcher: (delta_min [B, N], tok [B, N] int64) for sparks [B, T, D] / [B, T] and nodes
    [N, D] / [N]. No autograd (the selection pass)."""
    check_device(sparks, spark_a, x, a)
    bsz, t, d = sparks.shape
    n = x.shape[0]
    cd = compute_dtype(sparks.dtype)
    sp = sparks.detach().to(cd).contiguous()
    sa = spark_a.detach().to(cd).contiguous()
    xc = x.detach().to(cd).contiguous()
    ac = a.detach().to(cd).contiguous()
    dmin = torch.empty(bsz, n, device=sparks.device, dtype=cd)
    tok = torch.zeros(bsz, n, device=sparks.device, dtype=torch.int64)
    if bsz and n and t:
        block_n = min(_BLOCK_N, next_pow2(n, 16))
        grid = (triton.cdiv(n, block_n), bsz)
        _ignite_min_kernel[grid](
            sp, sa, xc, ac, dmin, tok, t, n, d, BLOCK_N=block_n, BLOCK_D=next_pow2(d)
        )
    else:
        dmin.fill_(float("inf"))
    return dmin.to(sparks.dtype), tok


def ignite_min_reference(
    sparks: torch.Tensor, spark_a: torch.Tensor, x: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch reference: min over tokens of |s - p|^2 / (a_s a_p) and its argmin."""
    diff = sparks.unsqueeze(2) - x  # [B, T, N, D]
    delta = (diff * diff).sum(-1) / (spark_a.unsqueeze(2) * a)
    return delta.min(1)
