"""Active-set selection kernels: exact k-winners by radix select, and statistical top-k.

Rows are ragged: row ``r`` owns entries ``ptr[r]:ptr[r+1]`` of a flat score list (a dense
``[B, n]`` matrix is the case ``ptr = n * arange(B + 1)``). One program per row.

Radix select (exact, sort-free). Each float32 score maps to an order-preserving unsigned 32-bit
key (held in int64): negatives have all bits flipped, non-negatives get the sign bit set. Four
passes of 8 bits (256-bin ``tl.histogram`` over the entries whose higher digits match the
prefix found so far) locate the exact key of the k-th largest entry; keys above it are selected
and ties at it go to the lowest indices (a running ``tl.cumsum`` of the tie flags), so exactly
``min(k, count)`` entries are chosen per row. Same result, bit for bit, as
``rsgn.selection.radix_select_rows`` / ``radix_select_mask`` (which use 12/12/8-bit
passes for long rows: the pass split does not change the selected set).

Statistical top-k (Spark Transformer): theta = mean + std Phi^-1(1 - k/n) over the finite
entries of each row (biased std), select x >= theta. Accurate only on near-Gaussian rows of
large n (reference sheet §4); offered as an option. Phi^-1 is evaluated once per row on the
host side of the launcher (``torch.erfinv`` on [rows]); the O(n) work is in the kernels.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import check_device, compute_dtype

_BLOCK = 256
_BINS = 256


@triton.jit
def _float_keys(x):
    """Order-preserving unsigned 32-bit keys (as int64) of float32 values."""
    u = x.to(tl.int32, bitcast=True).to(tl.int64) & 0xFFFFFFFF
    neg = (u & 0x80000000) != 0
    return tl.where(neg, 0xFFFFFFFF - u, u | 0x80000000)


@triton.jit
def _radix_select_kernel(s_ptr, ptr_ptr, out_ptr, K, BLOCK: tl.constexpr, BINS: tl.constexpr):
    row = tl.program_id(0)
    start = tl.load(ptr_ptr + row)
    end = tl.load(ptr_ptr + row + 1)
    remaining = tl.minimum(end - start, K)
    k_row = remaining
    prefix = (start * 0).to(tl.int64)
    bins = tl.arange(0, BINS)
    for p in tl.static_range(4):
        shift = 24 - 8 * p
        hist = tl.zeros([BINS], dtype=tl.int32)
        for c0 in range(start, end, BLOCK):
            offs = c0 + tl.arange(0, BLOCK)
            m = offs < end
            key = _float_keys(tl.load(s_ptr + offs, mask=m, other=0.0))
            in_play = (key >> (shift + 8)) == (prefix >> (shift + 8))
            digit = ((key >> shift) & (BINS - 1)).to(tl.int32)
            hist += tl.histogram(digit, BINS, mask=m & in_play)
        total = tl.sum(hist, axis=0)
        above_eq = total - tl.cumsum(hist, axis=0) + hist  # entries in bins >= j
        j = tl.max(tl.where(above_eq >= remaining, bins, 0), axis=0)
        remaining -= tl.sum(tl.where(bins == j, above_eq - hist, 0), axis=0)
        prefix = prefix | (j.to(tl.int64) << shift)
    carry = remaining * 0
    for c0 in range(start, end, BLOCK):
        offs = c0 + tl.arange(0, BLOCK)
        m = offs < end
        key = _float_keys(tl.load(s_ptr + offs, mask=m, other=0.0))
        tie = (key == prefix) & m
        rank = tl.cumsum(tie.to(tl.int32), axis=0) + carry
        sel = ((key > prefix) | (tie & (rank <= remaining))) & (k_row > 0)
        tl.store(out_ptr + offs, sel.to(tl.int8), mask=m)
        carry += tl.sum(tie.to(tl.int32), axis=0)


@triton.jit
def _row_stats_kernel(x_ptr, ptr_ptr, mean_ptr, var_ptr, cnt_ptr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    start = tl.load(ptr_ptr + row)
    end = tl.load(ptr_ptr + row + 1)
    acc = tl.zeros([BLOCK], dtype=mean_ptr.dtype.element_ty)
    cnt = tl.zeros([BLOCK], dtype=tl.int32)
    for c0 in range(start, end, BLOCK):
        offs = c0 + tl.arange(0, BLOCK)
        m = offs < end
        x = tl.load(x_ptr + offs, mask=m, other=0.0)
        ok = m & (tl.abs(x) < float("inf"))
        acc += tl.where(ok, x, 0.0)
        cnt += ok.to(tl.int32)
    n = tl.sum(cnt, axis=0)
    mean = tl.sum(acc, axis=0) / tl.maximum(n, 1).to(acc.dtype)
    acc2 = tl.zeros([BLOCK], dtype=mean_ptr.dtype.element_ty)
    for c0 in range(start, end, BLOCK):
        offs = c0 + tl.arange(0, BLOCK)
        m = offs < end
        x = tl.load(x_ptr + offs, mask=m, other=0.0)
        ok = m & (tl.abs(x) < float("inf"))
        dev = tl.where(ok, x - mean, 0.0)
        acc2 += dev * dev
    tl.store(mean_ptr + row, mean)
    tl.store(var_ptr + row, tl.sum(acc2, axis=0) / tl.maximum(n, 1).to(acc.dtype))
    tl.store(cnt_ptr + row, n)


@triton.jit
def _threshold_mask_kernel(x_ptr, ptr_ptr, theta_ptr, out_ptr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    start = tl.load(ptr_ptr + row)
    end = tl.load(ptr_ptr + row + 1)
    theta = tl.load(theta_ptr + row)
    for c0 in range(start, end, BLOCK):
        offs = c0 + tl.arange(0, BLOCK)
        m = offs < end
        x = tl.load(x_ptr + offs, mask=m, other=0.0)
        sel = (tl.abs(x) < float("inf")) & (x >= theta)
        tl.store(out_ptr + offs, sel.to(tl.int8), mask=m)


def rows_ptr(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """CSR row pointer [n_rows + 1] of an ascending row-id list."""
    ptr = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    ptr[1:] = torch.bincount(rows, minlength=n_rows).cumsum(0)
    return ptr


def radix_select_ragged(scores: torch.Tensor, ptr: torch.Tensor, k: int) -> torch.Tensor:
    """Launcher: exact k-winners mask [M] of each row ``ptr[r]:ptr[r+1]`` (ties to the lowest
    index). Scores are compared as float32 (like the reference)."""
    check_device(scores, ptr)
    s = scores.detach().float().contiguous().reshape(-1)
    out = torch.zeros(s.numel(), dtype=torch.int8, device=s.device)
    n_rows = ptr.numel() - 1
    if s.numel() and n_rows and k > 0:
        _radix_select_kernel[(n_rows,)](
            s, ptr.to(torch.int64).contiguous(), out, int(k), BLOCK=_BLOCK, BINS=_BINS
        )
    return out.bool()


def radix_select_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Exact k-winners per row of ``scores`` [B, n] (same contract as
    ``rsgn.selection.radix_select_mask``)."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, n], got shape {tuple(scores.shape)}")
    b, n = scores.shape
    ptr = torch.arange(b + 1, device=scores.device, dtype=torch.int64) * n
    return radix_select_ragged(scores.reshape(-1), ptr, k).view(b, n)


def radix_select_rows(
    scores: torch.Tensor, rows: torch.Tensor, n_rows: int, k: int
) -> torch.Tensor:
    """Exact k-winners over a ragged, row-sorted list (contract of
    ``rsgn.selection.radix_select_rows``)."""
    return radix_select_ragged(scores, rows_ptr(rows, n_rows), k)


def statistical_threshold(x: torch.Tensor, ptr: torch.Tensor, k: int) -> torch.Tensor:
    """Launcher: theta [rows] = mean + std * Phi^-1(1 - k/n) over each row's finite entries."""
    check_device(x, ptr)
    cd = compute_dtype(x.dtype)
    xc = x.detach().to(cd).contiguous().reshape(-1)
    n_rows = ptr.numel() - 1
    mean = torch.zeros(n_rows, dtype=cd, device=x.device)
    var = torch.zeros_like(mean)
    cnt = torch.zeros(n_rows, dtype=torch.int32, device=x.device)
    if n_rows:
        _row_stats_kernel[(n_rows,)](
            xc, ptr.to(torch.int64).contiguous(), mean, var, cnt, BLOCK=_BLOCK
        )
    n = cnt.clamp_min(1).to(cd)
    q = (1.0 - torch.as_tensor(float(k), dtype=cd) / n).clamp(1e-6, 1 - 1e-6)
    z = math.sqrt(2.0) * torch.erfinv(2 * q - 1)
    return mean + var.sqrt() * z


def statistical_select_ragged(x: torch.Tensor, ptr: torch.Tensor, k: int) -> torch.Tensor:
    """Launcher: statistical top-k mask [M]: finite x >= theta of its row."""
    theta = statistical_threshold(x, ptr, k)
    cd = compute_dtype(x.dtype)
    xc = x.detach().to(cd).contiguous().reshape(-1)
    out = torch.zeros(xc.numel(), dtype=torch.int8, device=x.device)
    n_rows = ptr.numel() - 1
    if xc.numel() and n_rows:
        _threshold_mask_kernel[(n_rows,)](
            xc, ptr.to(torch.int64).contiguous(), theta.contiguous(), out, BLOCK=_BLOCK
        )
    return out.bool()


def statistical_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Statistical top-k over the finite entries of each row of ``scores`` [B, n] (contract
    of ``rsgn.selection.statistical_mask`` with ``valid = isfinite(scores)``)."""
    b, n = scores.shape
    ptr = torch.arange(b + 1, device=scores.device, dtype=torch.int64) * n
    return statistical_select_ragged(scores.float().reshape(-1), ptr, k).view(b, n)


# ------------------------------------------------------------------ multi-program dense select
# A [B, n] score matrix with one program per row leaves most of a GPU idle once n is large (64
# programs streaming 1M entries five times each). Here every pass is split over (row, block)
# programs: histograms merge with atomics, a one-program-per-row kernel picks the digit, and
# the final pass writes the winners' ids directly (compaction fused: per-block counts, one
# exclusive scan over blocks, an in-block cumsum). Same set as ``radix_select_mask`` + eps.

_DBLOCK = 1024


@triton.jit
def _dense_hist_kernel(
    s_ptr, prefix_ptr, hist_ptr, N, SHIFT, BLOCK: tl.constexpr, BINS: tl.constexpr
):
    b = tl.program_id(1)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    key = _float_keys(tl.load(s_ptr + b.to(tl.int64) * N + offs, mask=m, other=0.0))
    pre = tl.load(prefix_ptr + b)
    in_play = (key >> (SHIFT + 8)) == (pre >> (SHIFT + 8))
    digit = ((key >> SHIFT) & (BINS - 1)).to(tl.int32)
    h = tl.histogram(digit, BINS, mask=m & in_play)
    tl.atomic_add(hist_ptr + b * BINS + tl.arange(0, BINS), h, mask=h > 0)


@triton.jit
def _dense_find_kernel(hist_ptr, prefix_ptr, rem_ptr, SHIFT, BINS: tl.constexpr):
    b = tl.program_id(0)
    bins = tl.arange(0, BINS)
    hist = tl.load(hist_ptr + b * BINS + bins)
    remaining = tl.load(rem_ptr + b)
    total = tl.sum(hist, axis=0)
    above_eq = total - tl.cumsum(hist, axis=0) + hist
    j = tl.max(tl.where(above_eq >= remaining, bins, 0), axis=0)
    remaining -= tl.sum(tl.where(bins == j, above_eq - hist, 0), axis=0)
    tl.store(rem_ptr + b, remaining)
    tl.store(prefix_ptr + b, tl.load(prefix_ptr + b) | (j.to(tl.int64) << SHIFT))
    tl.store(hist_ptr + b * BINS + bins, tl.zeros([BINS], dtype=tl.int32))


@triton.jit
def _dense_count_kernel(s_ptr, prefix_ptr, cnt_ptr, N, NBLK, eps, BLOCK: tl.constexpr):
    b = tl.program_id(1)
    c = tl.program_id(0)
    offs = c * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    x = tl.load(s_ptr + b.to(tl.int64) * N + offs, mask=m, other=0.0)
    key = _float_keys(x)
    pre = tl.load(prefix_ptr + b)
    above = tl.sum((m & (key > pre) & (x > eps)).to(tl.int32), axis=0)
    ties = tl.sum((m & (key == pre)).to(tl.int32), axis=0)
    tl.store(cnt_ptr + (b * NBLK + c) * 2, above)
    tl.store(cnt_ptr + (b * NBLK + c) * 2 + 1, ties)


@triton.jit
def _dense_write_kernel(
    s_ptr,
    prefix_ptr,
    rem_ptr,
    toff_ptr,
    ooff_ptr,
    ids_ptr,
    N,
    NBLK,
    W,
    eps,
    BLOCK: tl.constexpr,
):
    b = tl.program_id(1)
    c = tl.program_id(0)
    offs = c * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    x = tl.load(s_ptr + b.to(tl.int64) * N + offs, mask=m, other=0.0)
    key = _float_keys(x)
    pre = tl.load(prefix_ptr + b)
    remaining = tl.load(rem_ptr + b)
    tie = m & (key == pre)
    rank = tl.cumsum(tie.to(tl.int32), axis=0) + tl.load(toff_ptr + b * NBLK + c)
    sel = m & (x > eps) & ((key > pre) | (tie & (rank <= remaining)))
    pos = tl.cumsum(sel.to(tl.int32), axis=0) - 1 + tl.load(ooff_ptr + b * NBLK + c)
    tl.store(ids_ptr + b * W + pos, offs.to(tl.int64), mask=sel & (pos < W))


def radix_topk_dense(
    scores: torch.Tensor, k: int, eps: float, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k-winners of each row of ``scores`` [B, n] (ties to the lowest index) that also
    exceed ``eps``, compacted: (ids [B, width] ascending, padded 0; valid [B, width]).

    Equal to ``mask_to_ids(radix_select_mask(scores, k) & (scores > eps), width)``; every pass
    runs on B x ceil(n / 1024) programs, and nothing syncs with the host.
    """
    check_device(scores)
    s = scores.detach().float().contiguous()
    bsz, n = s.shape
    dev = s.device
    ids = torch.zeros(bsz, width, dtype=torch.int64, device=dev)
    if bsz == 0 or n == 0 or k <= 0 or width <= 0:
        return ids, torch.zeros(bsz, width, dtype=torch.bool, device=dev)
    nblk = triton.cdiv(n, _DBLOCK)
    prefix = torch.zeros(bsz, dtype=torch.int64, device=dev)
    rem = torch.full((bsz,), min(int(k), n), dtype=torch.int32, device=dev)
    hist = torch.zeros(bsz, _BINS, dtype=torch.int32, device=dev)
    for p in range(4):
        shift = 24 - 8 * p
        _dense_hist_kernel[(nblk, bsz)](s, prefix, hist, n, shift, BLOCK=_DBLOCK, BINS=_BINS)
        _dense_find_kernel[(bsz,)](hist, prefix, rem, shift, BINS=_BINS)
    cnt = torch.empty(bsz, nblk, 2, dtype=torch.int32, device=dev)
    eps32 = float(torch.tensor(eps, dtype=torch.float32))
    _dense_count_kernel[(nblk, bsz)](s, prefix, cnt, n, nblk, eps32, BLOCK=_DBLOCK)
    above, ties = cnt[..., 0], cnt[..., 1]
    toff = ties.cumsum(1, dtype=torch.int32) - ties  # ties in earlier blocks
    # ties all share one value: either all pass eps or none do
    kth = prefix.to(torch.int64)
    bits = torch.where(kth >= 0x80000000, kth & 0x7FFFFFFF, 0xFFFFFFFF - kth)
    kth_val = (bits & 0xFFFFFFFF).to(torch.int32).view(torch.float32)
    tie_ok = (kth_val > eps32).to(torch.int32).unsqueeze(1)
    tsel = (rem.unsqueeze(1) - toff).clamp(min=0).minimum(ties) * tie_ok
    per_blk = above + tsel
    ooff = per_blk.cumsum(1, dtype=torch.int32) - per_blk
    _dense_write_kernel[(nblk, bsz)](
        s,
        prefix,
        rem,
        toff.contiguous(),
        ooff.contiguous(),
        ids,
        n,
        nblk,
        width,
        eps32,
        BLOCK=_DBLOCK,
    )
    count = per_blk.sum(1, keepdim=True)
    valid = torch.arange(width, device=dev).unsqueeze(0) < count
    return ids, valid
