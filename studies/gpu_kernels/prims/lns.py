"""Möbius addition (curvature -1) in plain float arithmetic vs a logarithmic number system (LNS).

    x ⊕ y = ((1 + 2<x,y> + |y|^2) x + (1 - |x|^2) y) / (1 + 2<x,y> + |x|^2 |y|^2)

``mode="plain"`` evaluates the formula directly (``rsgn.geometry.mobius_add``, no clamp).

``mode="lns"`` / ``"lns_table"`` (the primitive) represent every real v as (s, L) with
s = sign(v) and L = log2|v| (zero: L = -1000, see ``_ZERO_L``), so products and quotients are
additions/subtractions of L (x_i y_i -> L_x + L_y, 2 v -> L + 1, n / q -> L_n - L_q) and sums go
through the Gaussian logarithms, z = |L_a - L_b| >= 0:

    same signs:      L = max(L_a, L_b) + sb(z),  sb(z) = log2(1 + 2^-z)
    opposite signs:  L = max(L_a, L_b) + db(z),  db(z) = log2(1 - 2^-z),  sign of the larger
    (z = 0 with opposite signs is an exact zero)

``"lns"`` evaluates sb/db in closed form (sb = log1p(2^-z) / ln 2, db = log(-expm1(-z ln 2)) /
ln 2); ``"lns_table"`` reads them from small tables of ``LNS_TABLE_SIZE`` samples over z in
[0, LNS_Z_MAX] with linear interpolation (sb, db = 0 beyond: 2^-24 is below float32 rounding),
except that db's first cell, where db -> -inf (the classic LNS subtraction singularity), falls
back to the closed form. Inputs convert once (log2) and the result converts back once (exp2).
L is emulated in the input's float type (a hardware LNS would use fixed point).

The reductions <x,y>, |x|^2, |y|^2 are sequential LNS sums over the D coordinates.
Near the boundary 1 - |x|^2 is an LNS *subtraction* of nearly equal magnitudes: db(z) for
z -> 0 amplifies the error of L_{|x|^2} exactly like float cancellation does (the LNS offers no
escape from it); measured in studies/gpu_kernels/primitives.py.

Measured in float32 under the interpreter (studies/gpu_kernels/primitives_cpu.json, vs float64
on the same inputs, radius of x 0.5..0.9999): max relative error plain 1.2e-7..1.4e-6, ``"lns"``
1.4e-7..1.9e-6 (the same), ``"lns_table"`` 1.9e-4..3.3e-2 (256 entries), 1.7e-5..8.8e-3 (1024),
1.1e-6..1.8e-4 (4096); near the boundary the table errors push up to 23% of the results
outside the ball (1024 entries, x and y at r = 0.99).

Forward only (no autograd): this module evaluates the primitive's accuracy and speed.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import check_device, compute_dtype, expm1, log1p

MODES = ("plain", "lns", "lns_table")
LNS_TABLE_SIZE = 1024
LNS_Z_MAX = 24.0
_ZERO_L = tl.constexpr(-1000.0)  # log2 of an exact zero (2^-1000: zero in float32, ~1e-301)
_BLOCK = 128
_LN2 = tl.constexpr(math.log(2.0))
_INV_LN2 = tl.constexpr(1.0 / math.log(2.0))

_TABLES: dict[tuple, torch.Tensor] = {}


def gauss_tables(
    size: int = LNS_TABLE_SIZE,
    z_max: float = LNS_Z_MAX,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """[2, size] tables of sb(z) = log2(1 + 2^-z) and db(z) = log2(1 - 2^-z) on z_j = j h,
    h = z_max / (size - 1), in float64 then cast (db(0) = -inf is stored as a finite stand-in;
    the kernel never reads it)."""
    key = (int(size), float(z_max), dtype, str(device))
    t = _TABLES.get(key)
    if t is None:
        z = torch.linspace(0.0, float(z_max), int(size), dtype=torch.float64)
        sb = torch.log1p(torch.exp2(-z)) / math.log(2.0)
        db = torch.log(-torch.expm1(-z * math.log(2.0))) / math.log(2.0)
        db[0] = db[1]
        t = torch.stack([sb, db]).to(dtype=dtype, device=device).contiguous()
        _TABLES[key] = t
    return t


# ------------------------------------------------------------------------------ LNS helpers
@triton.jit
def _to_lns(v):
    s = tl.where(v < 0, -1.0, 1.0)
    av = tl.abs(v)
    lv = tl.log2(tl.where(av > 0, av, 1.0))
    return s, tl.where(av > 0, lv, _ZERO_L)


@triton.jit
def _from_lns(s, lv):
    return tl.where(lv < 0.5 * _ZERO_L, 0.0, s * tl.exp2(tl.maximum(lv, 0.5 * _ZERO_L)))


@triton.jit
def _sb(z, tab_ptr, T, inv_h, TABLE: tl.constexpr):
    """log2(1 + 2^-z), z >= 0."""
    if TABLE:
        pos = z * inv_h
        inside = pos < (T - 1)
        j = tl.maximum(tl.minimum(pos, T - 2).to(tl.int32), 0)
        f = pos - j
        t0 = tl.load(tab_ptr + j)
        t1 = tl.load(tab_ptr + j + 1)
        r = tl.where(inside, t0 + f * (t1 - t0), 0.0)
    else:
        r = log1p(tl.exp(-z * _LN2)) * _INV_LN2
    return r


@triton.jit
def _db(z, tab_ptr, T, inv_h, TABLE: tl.constexpr):
    """log2(1 - 2^-z), z > 0 (z == 0 is handled by the caller: an exact zero)."""
    zs = tl.minimum(tl.where(z > 0, z, 1.0), 120.0)  # 2^-120: db = 0 to any float precision
    exact = tl.log(-expm1(-zs * _LN2)) * _INV_LN2
    if TABLE:
        pos = zs * inv_h
        inside = pos < (T - 1)
        j = tl.maximum(tl.minimum(pos, T - 2).to(tl.int32), 0)
        f = pos - j
        t0 = tl.load(tab_ptr + T + j)
        t1 = tl.load(tab_ptr + T + j + 1)
        r = tl.where(inside, t0 + f * (t1 - t0), 0.0)
        r = tl.where(pos < 1.0, exact, r)  # singular first cell: closed form
    else:
        r = exact
    return r


@triton.jit
def _lns_add(sa, la, sb_, lb, tab_ptr, T, inv_h, TABLE: tl.constexpr):
    """(s, L) of a + b for a = sa 2^la, b = sb_ 2^lb."""
    hi = tl.maximum(la, lb)
    z = tl.abs(la - lb)
    s_hi = tl.where(la >= lb, sa, sb_)
    same = sa == sb_
    r_same = _sb(z, tab_ptr, T, inv_h, TABLE)
    r_diff = _db(z, tab_ptr, T, inv_h, TABLE)
    lr = hi + tl.where(same, r_same, r_diff)
    zero = (~same) & (z == 0)
    # a zero operand (L = _ZERO_L) gives z huge: sb/db -> 0, result = the other operand
    return tl.where(zero, 1.0, s_hi), tl.where(zero, _ZERO_L, tl.maximum(lr, _ZERO_L))


@triton.jit
def _mobius_kernel(
    x_ptr,
    y_ptr,
    out_ptr,
    tab_ptr,
    M,
    D,
    T,
    inv_h,
    LNS: tl.constexpr,
    TABLE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """LNS False: plain float; LNS True: Gaussian logs in closed form, or from tables (TABLE)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    rm = offs < M
    if not LNS:
        xy = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)
        x2 = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)
        y2 = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)
        for d in range(0, D):
            xv = tl.load(x_ptr + offs * D + d, mask=rm, other=0.0)
            yv = tl.load(y_ptr + offs * D + d, mask=rm, other=0.0)
            xy += xv * yv
            x2 += xv * xv
            y2 += yv * yv
        ca = 1.0 + 2.0 * xy + y2
        cb = 1.0 - x2
        inv_den = 1.0 / (1.0 + 2.0 * xy + x2 * y2)
        for d in range(0, D):
            xv = tl.load(x_ptr + offs * D + d, mask=rm, other=0.0)
            yv = tl.load(y_ptr + offs * D + d, mask=rm, other=0.0)
            tl.store(out_ptr + offs * D + d, (ca * xv + cb * yv) * inv_den, mask=rm)
    else:
        zl = tl.full((BLOCK,), _ZERO_L, x_ptr.dtype.element_ty)
        one = tl.full((BLOCK,), 1.0, x_ptr.dtype.element_ty)
        s_xy, l_xy = one, zl
        l_x2, l_y2 = zl, zl  # squares are positive: sign +1 throughout
        for d in range(0, D):
            sx, lx = _to_lns(tl.load(x_ptr + offs * D + d, mask=rm, other=0.0))
            sy, ly = _to_lns(tl.load(y_ptr + offs * D + d, mask=rm, other=0.0))
            s_xy, l_xy = _lns_add(s_xy, l_xy, sx * sy, lx + ly, tab_ptr, T, inv_h, TABLE)
            _, l_x2 = _lns_add(one, l_x2, one, 2.0 * lx, tab_ptr, T, inv_h, TABLE)
            _, l_y2 = _lns_add(one, l_y2, one, 2.0 * ly, tab_ptr, T, inv_h, TABLE)
        zero = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)
        # 1 + 2<x,y>: (1, 0) + (s_xy, l_xy + 1)
        s_p, l_p = _lns_add(one, zero, s_xy, l_xy + 1.0, tab_ptr, T, inv_h, TABLE)
        s_a, l_a = _lns_add(s_p, l_p, one, l_y2, tab_ptr, T, inv_h, TABLE)  # + |y|^2
        s_b, l_b = _lns_add(one, zero, -one, l_x2, tab_ptr, T, inv_h, TABLE)  # 1 - |x|^2
        s_q, l_q = _lns_add(s_p, l_p, one, l_x2 + l_y2, tab_ptr, T, inv_h, TABLE)  # denominator
        for d in range(0, D):
            sx, lx = _to_lns(tl.load(x_ptr + offs * D + d, mask=rm, other=0.0))
            sy, ly = _to_lns(tl.load(y_ptr + offs * D + d, mask=rm, other=0.0))
            s_n, l_n = _lns_add(s_a * sx, l_a + lx, s_b * sy, l_b + ly, tab_ptr, T, inv_h, TABLE)
            tl.store(out_ptr + offs * D + d, _from_lns(s_n * s_q, l_n - l_q), mask=rm)


def mobius_add(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    mode: str = "plain",
    table_size: int = LNS_TABLE_SIZE,
    z_max: float = LNS_Z_MAX,
) -> torch.Tensor:
    """Launcher: x ⊕ y for rows [M, D] (broadcast-free), ``mode`` in ``MODES`` (forward only)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_device(x, y)
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(f"x and y must both be [M, D], got {tuple(x.shape)}, {tuple(y.shape)}")
    cd = compute_dtype(x.dtype)
    xc = x.detach().to(cd).contiguous()
    yc = y.detach().to(cd).contiguous()
    tab = gauss_tables(table_size, z_max, dtype=cd, device=x.device)
    out = torch.empty_like(xc)
    m, d = xc.shape
    if m:
        _mobius_kernel[(triton.cdiv(m, _BLOCK),)](
            xc,
            yc,
            out,
            tab,
            m,
            d,
            int(table_size),
            (int(table_size) - 1) / float(z_max),  # grid spacing: float32 is enough for it
            LNS=mode != "plain",
            TABLE=mode == "lns_table",
            BLOCK=_BLOCK,
        )
    return out.to(x.dtype)


def mobius_add_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain float64 torch reference of x ⊕ y (no clamp)."""
    x, y = x.double(), y.double()
    xy = (x * y).sum(-1, keepdim=True)
    x2 = (x * x).sum(-1, keepdim=True)
    y2 = (y * y).sum(-1, keepdim=True)
    return ((1 + 2 * xy + y2) * x + (1 - x2) * y) / (1 + 2 * xy + x2 * y2)
