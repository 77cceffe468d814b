"""Lorentz-model split as a kNN candidate filter, with an exact float32-accurate re-rank.

Poincaré point p (conformal factor a = 1 - |p|^2, given accurately by the caller) -> hyperboloid

    X_0 = (1 + |p|^2) / (1 - |p|^2) = 2 / a - 1,     X_i = 2 p_i / a,

Minkowski inner product <X, Y>_L = -X_0 Y_0 + sum_i X_i Y_i = X_neg . Y  with X_neg = (-X_0, X_s):
ONE GEMM with the time column of the query side negated. Since

    d_H(p, q) = arcosh(-<X, Y>_L),   -<X, Y>_L = 1 + 2 |p - q|^2 / (a_p a_q),

d_H is monotone decreasing in the score <X, Y>_L, so the k nearest are the k largest scores.

Filter (``filter="lorentz"``): take the top ``M = k * oversample`` candidates per query from the
GEMM score, then re-rank them with the float32-accurate distance

    d_H = 2 asinh( |p - q| / sqrt(a_p a_q) )          (kernels/distance.py, rsgn/geometry.py)

and return the k nearest among the candidates. The GEMM's coordinates use a = 1 - |p|^2 recomputed
in float64 from the given p (consistent with the rounded point, see ``_fp64_parts``); the
re-rank uses the caller's accurate ``a``. The plain version (``filter="exact"``) evaluates
that accurate distance for every (query, point) pair (a difference form, no GEMM) and keeps the
k smallest: fused (``candidates="fused"``, running top-k in registers, the same machinery as the
Lorentz filter's fused step) or through the full [Q, N] distance matrix + ``torch.topk`` (any
other ``candidates``).

Precision: the GEMM score's rounding error is about eps * 2 X_0 Y_0 = eps * 8 / (a_p a_q) near
the boundary, i.e. an error of about 4 eps in |p - q|^2 whatever the radius (Euclidean resolution
sqrt(4 eps) ~ 7e-4 in float32). Near the boundary hyperbolic neighbours are Euclidean-close
(|p - q| ~ d a / 2), so the candidate set misses true neighbours there unless ``oversample``
covers the misordering. ``tl.dot`` on float32 uses TF32 on a GPU unless told otherwise, so the
precision is an explicit argument, default ``"ieee"`` (the interpreter ignores it: CPU tests
cannot catch a TF32 slip). ``precision="fp64"`` computes the Lorentz coordinates and the score
in float64 (CUDA-core FMAs in the Triton kernels, DGEMM for ``candidates="torch"``): resolution
4 eps_64 in |p - q|^2, so the filter stays exact near the boundary; on an H100 float64 FMA
throughput equals the float32 non-tensor-core (``"ieee"``) rate.

Candidate step (``candidates=``):

- ``"fused"`` (default): a Triton kernel computes a [BLOCK_Q, BLOCK_N] score tile with
  ``tl.dot`` and keeps a running per-query top-M in registers (keys = sortable score bits << 32 |
  inverted index, merged with ``tl.topk``); the N axis is split over ``SPLIT`` programs whose
  partial top-M are merged by one ``torch.topk`` on the int64 keys. The [Q, N] score matrix is
  never written. Keys hold the score rounded to float32: harmless for ``precision="fp64"``
  (the rounding is relative to 1 + 2 delta, not the catastrophic eps X_0 Y_0 of a float32 sum).
- ``"gemm"``: Triton ``tl.dot`` score kernel writes [Q, N] scores, then ``torch.topk``.
- ``"torch"``: ``torch.mm`` on the Lorentz coordinates, then ``torch.topk`` (TF32 follows
  ``precision``).

Measured (Triton interpreter, studies/gpu_kernels/primitives_cpu.json; N = 1024, 64 queries,
k = 16, 4 clusters of hyperbolic spread 0.5 centred at radius r, D = 3..32): recall@16 of the
candidate set at oversample 2 is 1.000 for r <= 0.99 with ``"ieee"``, 0.37-0.72 at r = 0.999
and ~0.12 at r = 0.9999 (oversample 8: 0.83-0.99 and ~0.5); TF32 (emulated) already loses at
r = 0.9 (0.83-0.90 at oversample 2) and 0.12 at r = 0.99; ``"fp64"`` is 1.000 everywhere.

The re-rank is a Triton kernel (gathered candidates, 2-asinh distance); the final k-of-M choice
is ``torch.sort`` (stable, ties by index). No autograd: kNN indices are not differentiable; use
:func:`rsgn.kernels.distance.pair_distance` on the returned pairs for gradients.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import asinh, check_device, compute_dtype, next_pow2

PRECISIONS = ("ieee", "tf32", "tf32x3", "fp64")
CANDIDATES = ("fused", "gemm", "torch")
FILTERS = ("lorentz", "exact")

_BQ = 16  # tl.dot needs >= 16 rows
_BN = 64
_BQ_EXACT = 16
_BN_EXACT = 64
_BQ_RERANK = 16


# ------------------------------------------------------------------------------ Lorentz map
def to_lorentz(x: torch.Tensor, a: torch.Tensor, *, negate_time: bool = False) -> torch.Tensor:
    """Hyperboloid coordinates [N, D+1]: X_0 = 2/a - 1, X_i = 2 x_i / a (``a = 1 - |x|^2``);
    with ``negate_time`` the time column is -X_0 (the query side of the one-GEMM product)."""
    inv = 2.0 / a
    x0 = (inv - 1.0).unsqueeze(-1)
    return torch.cat([-x0 if negate_time else x0, x * inv.unsqueeze(-1)], dim=-1)


def lorentz_inner_reference(
    xq: torch.Tensor, aq: torch.Tensor, x: torch.Tensor, a: torch.Tensor
) -> torch.Tensor:
    """<X, Y>_L [Q, N] in float64 with the filter's conformal factors (:func:`_fp64_parts`:
    float32 points get a = 1 - |x|^2 recomputed in float64, float64 points keep their a)."""
    xl = to_lorentz(*_fp64_parts(xq, aq), negate_time=True)
    yl = to_lorentz(*_fp64_parts(x, a))
    return xl @ yl.T


# ------------------------------------------------------------------------------ kernels
@triton.jit
def _score_tile(
    q_ptr,
    y_ptr,
    offs_q,
    offs_n,
    Q,
    N,
    KP: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """[BLOCK_Q, BLOCK_N] tile of X_neg . Y^T: ``tl.dot`` (float32, given precision) or, for
    float64 coordinates, K rank-1 updates on CUDA cores (no fp64 ``tl.dot`` needed)."""
    qm = offs_q < Q
    nm = offs_n < N
    if q_ptr.dtype.element_ty == tl.float64:
        s = tl.zeros((BLOCK_Q, BLOCK_N), dtype=tl.float64)
        for kk in range(0, KP):
            xk = tl.load(q_ptr + offs_q * KP + kk, mask=qm, other=0.0)
            yk = tl.load(y_ptr + offs_n * KP + kk, mask=nm, other=0.0)
            s += xk[:, None] * yk[None, :]
    else:
        offs_k = tl.arange(0, KP)
        xq = tl.load(q_ptr + offs_q[:, None] * KP + offs_k[None, :], mask=qm[:, None], other=0.0)
        yt = tl.load(y_ptr + offs_n[None, :] * KP + offs_k[:, None], mask=nm[None, :], other=0.0)
        s = tl.dot(xq, yt, input_precision=PRECISION)
    return s


@triton.jit
def _mask_scores(s, offs_q, offs_n, self_ptr, Q, N, HAS_SELF: tl.constexpr):
    bad = offs_n[None, :] >= N
    if HAS_SELF:
        me = tl.load(self_ptr + offs_q, mask=offs_q < Q, other=-1)
        bad = bad | (offs_n[None, :] == me[:, None])
    return tl.where(bad, float("-inf"), s)


@triton.jit
def _score_kernel(
    q_ptr,
    y_ptr,
    self_ptr,
    out_ptr,
    Q,
    N,
    KP: tl.constexpr,
    HAS_SELF: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """out[q, n] = X_neg[q] . Y[n] (-inf for n == self[q])."""
    offs_q = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    s = _score_tile(q_ptr, y_ptr, offs_q, offs_n, Q, N, KP, PRECISION, BLOCK_Q, BLOCK_N)
    s = _mask_scores(s, offs_q, offs_n, self_ptr, Q, N, HAS_SELF)
    m = (offs_q[:, None] < Q) & (offs_n[None, :] < N)
    tl.store(out_ptr + offs_q[:, None].to(tl.int64) * N + offs_n[None, :], s, mask=m)


@triton.jit
def _pack_keys(s, offs_n):
    """int64 keys ordered like (score, -index): sortable float32 bits in the high word."""
    bits = s.to(tl.float32).to(tl.int32, bitcast=True)
    key = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    low = 0x7FFFFFFF - offs_n  # smaller index wins a tie
    return (key.to(tl.int64) << 32) | low[None, :].to(tl.int64)


@triton.jit
def _fused_topm_kernel(
    q_ptr,
    y_ptr,
    self_ptr,
    out_ptr,
    Q,
    N,
    n_per_split,
    KP: tl.constexpr,
    MP: tl.constexpr,
    HAS_SELF: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Running top-MP keys of X_neg[q] . Y[n] over the split's n range -> out[q, split, :]."""
    pid_q = tl.program_id(0)
    split = tl.program_id(1)
    n_splits = tl.num_programs(1)
    offs_q = pid_q * BLOCK_Q + tl.arange(0, BLOCK_Q)
    n_lo = split * n_per_split
    n_hi = tl.minimum(n_lo + n_per_split, N)
    best = tl.full((BLOCK_Q, MP), -9223372036854775807, tl.int64)  # below any key
    for n0 in range(n_lo, n_hi, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        s = _score_tile(q_ptr, y_ptr, offs_q, offs_n, Q, N, KP, PRECISION, BLOCK_Q, BLOCK_N)
        s = _mask_scores(s, offs_q, offs_n, self_ptr, Q, n_hi, HAS_SELF)
        keys = _pack_keys(s, offs_n)
        if BLOCK_N > MP:
            keys = tl.topk(keys, MP)
        both = tl.reshape(tl.join(best, keys), (BLOCK_Q, 2 * MP))
        best = tl.topk(both, MP)
    offs_m = tl.arange(0, MP)
    ptr = out_ptr + (offs_q[:, None] * n_splits + split) * MP + offs_m[None, :]
    tl.store(ptr, best, mask=offs_q[:, None] < Q)


@triton.jit
def _exact_tile(
    xq_ptr,
    aq_ptr,
    x_ptr,
    a_ptr,
    self_ptr,
    offs_q,
    offs_n,
    Q,
    N,
    D,
    HAS_SELF: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """[BLOCK_Q, BLOCK_N] tile of 2 asinh(|x_q - x_n| / sqrt(a_q a_n)) (+inf: n >= N or self)."""
    qm = offs_q < Q
    nm = offs_n < N
    acc = tl.zeros((BLOCK_Q, BLOCK_N), dtype=tl.float32)
    acc = acc.to(x_ptr.dtype.element_ty)
    for d in range(0, D):
        xq = tl.load(xq_ptr + offs_q * D + d, mask=qm, other=0.0)
        xn = tl.load(x_ptr + offs_n * D + d, mask=nm, other=0.0)
        diff = xq[:, None] - xn[None, :]
        acc += diff * diff
    aq = tl.load(aq_ptr + offs_q, mask=qm, other=1.0)
    an = tl.load(a_ptr + offs_n, mask=nm, other=1.0)
    dist = 2.0 * asinh(tl.sqrt(acc) / tl.sqrt(aq[:, None] * an[None, :]))
    bad = offs_n[None, :] >= N
    if HAS_SELF:
        me = tl.load(self_ptr + offs_q, mask=qm, other=-1)
        bad = bad | (offs_n[None, :] == me[:, None])
    return tl.where(bad, float("inf"), dist)


@triton.jit
def _exact_dist_kernel(
    xq_ptr,
    aq_ptr,
    x_ptr,
    a_ptr,
    self_ptr,
    out_ptr,
    Q,
    N,
    D,
    HAS_SELF: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """out[q, n] = 2 asinh(|x_q - x_n| / sqrt(a_q a_n)) (+inf for n == self[q])."""
    offs_q = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    dist = _exact_tile(
        xq_ptr, aq_ptr, x_ptr, a_ptr, self_ptr, offs_q, offs_n, Q, N, D, HAS_SELF, BLOCK_Q, BLOCK_N
    )
    ptr = out_ptr + offs_q[:, None].to(tl.int64) * N + offs_n[None, :]
    tl.store(ptr, dist, mask=(offs_q[:, None] < Q) & (offs_n[None, :] < N))


@triton.jit
def _fused_exact_topk_kernel(
    xq_ptr,
    aq_ptr,
    x_ptr,
    a_ptr,
    self_ptr,
    out_ptr,
    Q,
    N,
    D,
    n_per_split,
    KP2: tl.constexpr,
    HAS_SELF: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Plain version, fused: running top-KP2 keys of -d_H (accurate distance) over the split."""
    pid_q = tl.program_id(0)
    split = tl.program_id(1)
    n_splits = tl.num_programs(1)
    offs_q = pid_q * BLOCK_Q + tl.arange(0, BLOCK_Q)
    n_lo = split * n_per_split
    n_hi = tl.minimum(n_lo + n_per_split, N)
    best = tl.full((BLOCK_Q, KP2), -9223372036854775807, tl.int64)  # below any key
    for n0 in range(n_lo, n_hi, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        dist = _exact_tile(
            xq_ptr,
            aq_ptr,
            x_ptr,
            a_ptr,
            self_ptr,
            offs_q,
            offs_n,
            Q,
            n_hi,
            D,
            HAS_SELF,
            BLOCK_Q,
            BLOCK_N,
        )
        keys = _pack_keys(-dist, offs_n)
        if BLOCK_N > KP2:
            keys = tl.topk(keys, KP2)
        both = tl.reshape(tl.join(best, keys), (BLOCK_Q, 2 * KP2))
        best = tl.topk(both, KP2)
    offs_m = tl.arange(0, KP2)
    ptr = out_ptr + (offs_q[:, None] * n_splits + split) * KP2 + offs_m[None, :]
    tl.store(ptr, best, mask=offs_q[:, None] < Q)


@triton.jit
def _rerank_kernel(
    xq_ptr,
    aq_ptr,
    x_ptr,
    a_ptr,
    cand_ptr,
    out_ptr,
    Q,
    M,
    D,
    BLOCK_Q: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    """out[q, m] = 2 asinh(|x_q - x_c| / sqrt(a_q a_c)), c = cand[q, m] (+inf where c < 0)."""
    offs_q = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    offs_m = tl.arange(0, BLOCK_M)
    qm = offs_q < Q
    m2 = qm[:, None] & (offs_m[None, :] < M)
    c = tl.load(cand_ptr + offs_q[:, None] * M + offs_m[None, :], mask=m2, other=-1)
    ok = m2 & (c >= 0)
    cs = tl.where(ok, c, 0)
    acc = tl.zeros((BLOCK_Q, BLOCK_M), dtype=tl.float32)
    acc = acc.to(x_ptr.dtype.element_ty)
    for d in range(0, D):
        xq = tl.load(xq_ptr + offs_q * D + d, mask=qm, other=0.0)
        xc = tl.load(x_ptr + cs * D + d, mask=ok, other=0.0)
        diff = xq[:, None] - xc
        acc += diff * diff
    aq = tl.load(aq_ptr + offs_q, mask=qm, other=1.0)
    ac = tl.load(a_ptr + cs, mask=ok, other=1.0)
    dist = 2.0 * asinh(tl.sqrt(acc) / tl.sqrt(aq[:, None] * ac))
    tl.store(
        out_ptr + offs_q[:, None] * M + offs_m[None, :], tl.where(ok, dist, float("inf")), mask=m2
    )


# ------------------------------------------------------------------------------ launchers
def _prep(xq, aq, x, a, self_index):
    check_device(xq, aq, x, a)
    cd = compute_dtype(x.dtype)
    xq, aq, x, a = (t.detach().to(cd).contiguous() for t in (xq, aq, x, a))
    if self_index is not None:
        self_index = self_index.reshape(-1).to(torch.int64).contiguous()
    return xq, aq, x, a, self_index


def _fp64_parts(x: torch.Tensor, a: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, a) in float64 for the Lorentz coordinates, a = 1 - |x|^2 recomputed in float64 from
    the given (possibly rounded) x: the identity -<X,Y>_L = 1 + 2|x-y|^2 / (a_x a_y) needs a
    consistent with x, and a float32 x carries an error ~2 eps |x| in 1 - |x|^2, which near the
    boundary is as large as |x - y|^2 between neighbours (measured: fp64-score recall 0.08 at
    r = 0.9999 with the given a, 1 with the recomputed one). Float64 inputs keep their a."""
    if x.dtype == torch.float64 and a is not None:
        return x, a.double()
    xd = x.double()
    return xd, 1.0 - (xd * xd).sum(-1)


def _work_parts(x, a, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, a) for the Lorentz map: float64 for ``"fp64"``, else the input dtype, a rounded once."""
    xd, ad = _fp64_parts(x, a)
    if precision == "fp64":
        return xd, ad
    return x, ad.to(x.dtype)


def _padded_lorentz(x, a, negate_time: bool, precision: str) -> torch.Tensor:
    """Lorentz coordinates zero-padded to KP = next_pow2(max(D+1, 16)) columns (tl.dot K >= 16),
    in float64 for ``precision="fp64"`` (or float64 inputs). The a used here is 1 - |x|^2 of the
    given (rounded) x, evaluated in float64 and rounded once (:func:`_fp64_parts`)."""
    lor = to_lorentz(*_work_parts(x, a, precision), negate_time=negate_time)
    kp = next_pow2(lor.shape[1], floor=16)
    out = torch.zeros(lor.shape[0], kp, device=x.device, dtype=lor.dtype)
    out[:, : lor.shape[1]] = lor
    return out


@contextlib.contextmanager
def _torch_matmul_precision(precision: str):
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def lorentz_scores(
    xq: torch.Tensor,
    aq: torch.Tensor,
    x: torch.Tensor,
    a: torch.Tensor,
    *,
    precision: str = "ieee",
    self_index: torch.Tensor | None = None,
    use_torch: bool = False,
) -> torch.Tensor:
    """Launcher: GEMM scores <X_q, Y_n>_L [Q, N] (``-inf`` at n == self_index[q])."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    xq, aq, x, a, self_index = _prep(xq, aq, x, a, self_index)
    q, n = xq.shape[0], x.shape[0]
    if use_torch:
        with _torch_matmul_precision(precision):
            lq = to_lorentz(*_work_parts(xq, aq, precision), negate_time=True)
            s = lq @ to_lorentz(*_work_parts(x, a, precision)).T
        if self_index is not None:
            s[torch.arange(q, device=s.device), self_index] = float("-inf")
        return s
    lq = _padded_lorentz(xq, aq, True, precision)
    ly = _padded_lorentz(x, a, False, precision)
    out = torch.empty(q, n, device=x.device, dtype=lq.dtype)
    if q and n:
        _score_kernel[(triton.cdiv(q, _BQ), triton.cdiv(n, _BN))](
            lq,
            ly,
            self_index if self_index is not None else lq,
            out,
            q,
            n,
            KP=lq.shape[1],
            HAS_SELF=self_index is not None,
            PRECISION="ieee" if precision == "fp64" else precision,
            BLOCK_Q=_BQ,
            BLOCK_N=_BN,
        )
    return out


def lorentz_candidates(
    xq: torch.Tensor,
    aq: torch.Tensor,
    x: torch.Tensor,
    a: torch.Tensor,
    m: int,
    *,
    candidates: str = "fused",
    precision: str = "ieee",
    self_index: torch.Tensor | None = None,
    splits: int | None = None,
) -> torch.Tensor:
    """Launcher: indices [Q, m] of the m largest Lorentz scores per query (-1 where fewer)."""
    if candidates not in CANDIDATES:
        raise ValueError(f"candidates must be one of {CANDIDATES}, got {candidates!r}")
    n = x.shape[0]
    m = int(min(m, n))
    if candidates != "fused":
        s = lorentz_scores(
            xq,
            aq,
            x,
            a,
            precision=precision,
            self_index=self_index,
            use_torch=candidates == "torch",
        )
        val, idx = torch.topk(s, m, dim=1)
        return torch.where(torch.isfinite(val), idx, -1)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    xq, aq, x, a, self_index = _prep(xq, aq, x, a, self_index)
    q = xq.shape[0]
    if n >= 2**31:
        raise ValueError("fused candidates pack the index in 31 bits: N < 2^31")
    mp = next_pow2(m)
    bn = max(_BN, mp)
    splits, n_per = _splits(q, n, bn, splits)
    lq = _padded_lorentz(xq, aq, True, precision)
    ly = _padded_lorentz(x, a, False, precision)
    keys = torch.empty(q, splits * mp, device=x.device, dtype=torch.int64)
    if q and n:
        _fused_topm_kernel[(triton.cdiv(q, _BQ), splits)](
            lq,
            ly,
            self_index if self_index is not None else lq,
            keys,
            q,
            n,
            n_per,
            KP=lq.shape[1],
            MP=mp,
            HAS_SELF=self_index is not None,
            PRECISION="ieee" if precision == "fp64" else precision,
            BLOCK_Q=_BQ,
            BLOCK_N=bn,
        )
    return _decode_keys(keys, m)


def _decode_keys(keys: torch.Tensor, m: int) -> torch.Tensor:
    """Indices [Q, m] of the m largest int64 keys per row (-1 for -inf / empty slots)."""
    if keys.shape[1] > m:
        keys = torch.topk(keys, m, dim=1).values
    else:
        keys = keys[:, :m]
    hi = keys >> 32  # sortable score bits; -inf (and the empty-slot sentinel) are not candidates
    idx = 0x7FFFFFFF - (keys & 0xFFFFFFFF)
    bad = hi <= -2139095041  # key of -inf (0xFF800000 ^ 0x7FFFFFFF) or below
    return torch.where(bad, -1, idx)


def _splits(q: int, n: int, bn: int, splits: int | None) -> tuple[int, int]:
    """(splits, n_per_split) over N: enough programs to fill a GPU (~4 per SM on 132 SMs), each
    with at least 8 tiles of ``bn`` points."""
    if splits is None:
        splits = max(1, min(triton.cdiv(528, triton.cdiv(q, _BQ)), triton.cdiv(n, 8 * bn)))
    n_per = triton.cdiv(triton.cdiv(n, splits), bn) * bn
    return triton.cdiv(n, n_per), n_per


def exact_candidates(
    xq: torch.Tensor,
    aq: torch.Tensor,
    x: torch.Tensor,
    a: torch.Tensor,
    m: int,
    *,
    self_index: torch.Tensor | None = None,
    splits: int | None = None,
) -> torch.Tensor:
    """Launcher (plain version, fused): indices [Q, m] of the m nearest by the accurate distance
    (running top-m in registers, ties by index; the [Q, N] matrix is never written)."""
    xq, aq, x, a, self_index = _prep(xq, aq, x, a, self_index)
    q, n, d = xq.shape[0], x.shape[0], x.shape[1]
    m = int(min(m, n))
    if n >= 2**31:
        raise ValueError("fused top-k packs the index in 31 bits: N < 2^31")
    mp = next_pow2(m)
    bn = max(_BN_EXACT, mp)
    splits, n_per = _splits(q, n, bn, splits)
    keys = torch.empty(q, splits * mp, device=x.device, dtype=torch.int64)
    if q and n:
        _fused_exact_topk_kernel[(triton.cdiv(q, _BQ), splits)](
            xq,
            aq,
            x,
            a,
            self_index if self_index is not None else xq,
            keys,
            q,
            n,
            d,
            n_per,
            KP2=mp,
            HAS_SELF=self_index is not None,
            BLOCK_Q=_BQ,
            BLOCK_N=bn,
        )
    return _decode_keys(keys, m)


def exact_distances(
    xq: torch.Tensor,
    aq: torch.Tensor,
    x: torch.Tensor,
    a: torch.Tensor,
    *,
    self_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Launcher (plain version): accurate d_H [Q, N] for every pair (+inf at self)."""
    xq, aq, x, a, self_index = _prep(xq, aq, x, a, self_index)
    q, n, d = xq.shape[0], x.shape[0], x.shape[1]
    out = torch.empty(q, n, device=x.device, dtype=x.dtype)
    if q and n:
        _exact_dist_kernel[(triton.cdiv(q, _BQ_EXACT), triton.cdiv(n, _BN_EXACT))](
            xq,
            aq,
            x,
            a,
            self_index if self_index is not None else xq,
            out,
            q,
            n,
            d,
            HAS_SELF=self_index is not None,
            BLOCK_Q=_BQ_EXACT,
            BLOCK_N=_BN_EXACT,
        )
    return out


def rerank_distances(
    xq: torch.Tensor, aq: torch.Tensor, x: torch.Tensor, a: torch.Tensor, cand: torch.Tensor
) -> torch.Tensor:
    """Launcher: accurate d_H [Q, M] to the candidates ``cand`` [Q, M] (+inf where cand < 0)."""
    xq, aq, x, a, _ = _prep(xq, aq, x, a, None)
    q, mm = cand.shape
    cand = cand.to(torch.int64).contiguous()
    out = torch.empty(q, mm, device=x.device, dtype=x.dtype)
    if q and mm:
        _rerank_kernel[(triton.cdiv(q, _BQ_RERANK),)](
            xq, aq, x, a, cand, out, q, mm, x.shape[1], BLOCK_Q=_BQ_RERANK, BLOCK_M=next_pow2(mm)
        )
    return out


def _smallest_k(dist: torch.Tensor, idx: torch.Tensor, k: int):
    """k smallest distances per row, ties by index (stable sort on the index order first)."""
    o1 = torch.argsort(idx, dim=1)
    d1 = torch.gather(dist, 1, o1)
    o2 = torch.argsort(d1, dim=1, stable=True)[:, :k]
    sel = torch.gather(o1, 1, o2)
    return torch.gather(idx, 1, sel), torch.gather(dist, 1, sel)


def knn(
    xq: torch.Tensor,
    aq: torch.Tensor,
    x: torch.Tensor,
    a: torch.Tensor,
    k: int,
    *,
    filter: str = "lorentz",
    oversample: float = 2.0,
    candidates: str = "fused",
    precision: str = "ieee",
    self_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest points of ``x`` [N, D] to each query ``xq`` [Q, D] in hyperbolic distance.

    ``a``/``aq`` are the accurate conformal factors 1 - |x|^2. ``filter="lorentz"`` (the
    primitive): Lorentz-GEMM candidate filter with M = ceil(k * oversample) candidates, then the
    exact re-rank; ``filter="exact"`` (plain): accurate distance to every point (fused top-k for
    ``candidates="fused"``, else the full distance matrix + ``torch.topk``). ``self_index``
    [Q] excludes point self_index[q] from query q's answer (self-kNN: ``arange(N)``).

    Returns (indices [Q, k] nearest first, distances [Q, k]); -1 / inf where fewer than k exist.
    """
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    n = x.shape[0]
    if filter == "exact" and candidates == "fused":
        idx = exact_candidates(xq, aq, x, a, k, self_index=self_index)
        dist = rerank_distances(xq, aq, x, a, idx)
        idx, val = _smallest_k(dist, idx, idx.shape[1])
    elif filter == "exact":
        dist = exact_distances(xq, aq, x, a, self_index=self_index)
        kk = min(k, n)
        val, idx = torch.topk(dist, kk, dim=1, largest=False, sorted=True)
        idx, val = _smallest_k(val, idx, kk)  # ties by index, like the reference
    else:
        m = max(k, int(-(-k * oversample // 1)))
        cand = lorentz_candidates(
            xq, aq, x, a, m, candidates=candidates, precision=precision, self_index=self_index
        )
        dist = rerank_distances(xq, aq, x, a, cand)
        idx, val = _smallest_k(dist, cand, min(k, cand.shape[1]))
    idx = torch.where(torch.isfinite(val), idx, -1)
    if idx.shape[1] < k:
        pad = k - idx.shape[1]
        idx = torch.nn.functional.pad(idx, (0, pad), value=-1)
        val = torch.nn.functional.pad(val, (0, pad), value=float("inf"))
    return idx, val.to(xq.dtype)


def knn_reference(
    xq: torch.Tensor,
    aq: torch.Tensor,
    x: torch.Tensor,
    a: torch.Tensor,
    k: int,
    self_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force float64 torch reference: (indices [Q, k], distances [Q, k]), ties by index."""
    p, pa = xq.detach().double(), aq.detach().double()
    y, ya = x.detach().double(), a.detach().double()
    diff = torch.linalg.vector_norm(p[:, None, :] - y[None, :, :], dim=-1)
    d = 2.0 * torch.asinh(diff / torch.sqrt(pa[:, None] * ya[None, :]))
    if self_index is not None:
        d[torch.arange(d.shape[0], device=d.device), self_index.to(d.device)] = float("inf")
    order = torch.argsort(d, dim=1, stable=True)[:, :k]
    return order.to(x.device), torch.gather(d, 1, order).to(x.dtype)


def candidate_recall(cand: torch.Tensor, true_idx: torch.Tensor) -> torch.Tensor:
    """Per query: fraction of the true k neighbours present in the candidate set [Q]."""
    hit = (true_idx[:, :, None] == cand[:, None, :]).any(-1)
    return hit.double().mean(1)
