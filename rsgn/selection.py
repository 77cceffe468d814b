"""Active-set selection: exact sort-free k-winners (radix select) and statistical top-k.

Radix select
------------
Each float32 score is mapped to an unsigned 32-bit key whose integer order is the float order
(flip all bits of negatives, set the sign bit of non-negatives). Three histogram passes over
bits 31-20 (4096 bins), 19-8 (4096 bins) and 7-0 (256 bins) (four 8-bit passes for rows of
at most 4096 entries) find the exact key of the k-th
largest score in O(n) per row without sorting (the scheme of ``radixSelect`` behind
``torch.topk`` on CUDA). Keys strictly above it are selected; ties at it are broken by the
lowest index, so exactly ``k`` elements are chosen per row, deterministically.

Statistical top-k (Spark Transformer, arXiv 2506.06644)
-------------------------------------------------------
theta = mean(x) + std(x) * Phi^-1(1 - k/n); select x >= theta. One pass, no sort, but only
accurate for near-Gaussian rows with large n; on skewed RSGN ignition scores it selects
0.001-0.44 of k (measured in ``reference/hyperbolic-numerics.md`` §4). Offered as an option,
never the default.
"""

from __future__ import annotations

import math

import torch

_PASSES_WIDE = ((20, 12), (8, 12), (0, 8))  # (shift, bits) from the most significant end
_PASSES_NARROW = ((24, 8), (16, 8), (8, 8), (0, 8))  # rows of <= 4096: smaller histograms


def float_keys(x: torch.Tensor) -> torch.Tensor:
    """Order-preserving unsigned 32-bit keys (held in int64) of float32 values."""
    u = x.float().contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    neg = (u & 0x80000000) != 0
    return torch.where(neg, 0xFFFFFFFF - u, u | 0x80000000)


def segment_rank(flags: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """1-based running count of ``flags`` within each row (rows sorted ascending)."""
    c = flags.to(torch.int64).cumsum(0)
    start = counts.cumsum(0) - counts  # first index of each row
    return c - (c - flags.to(torch.int64))[start[rows]]


def radix_select_rows(
    scores: torch.Tensor, rows: torch.Tensor, n_rows: int, k: int
) -> torch.Tensor:
    """Exact k-winners per row over a ragged, row-sorted list: mask [M] with ``min(k, count)``
    entries of each row selected (ties at the k-th value go to the earliest entries).

    ``scores`` [M] float, ``rows`` [M] int64 ascending. Sort-free: 3-4 histogram passes over the
    order-preserving 32-bit keys (see the module docstring); O(M + n_rows * bins).
    """
    m = scores.numel()
    dev = scores.device
    if m == 0 or k <= 0:
        return torch.zeros(m, dtype=torch.bool, device=dev)
    counts = torch.bincount(rows, minlength=n_rows)
    if int(counts.max()) <= k:
        return torch.ones(m, dtype=torch.bool, device=dev)
    keys = float_keys(scores)
    remaining = counts.clamp_max(k)
    prefix = torch.zeros(n_rows, dtype=torch.int64, device=dev)
    in_play = torch.ones(m, dtype=torch.float64, device=dev)
    passes = _PASSES_WIDE if int(counts.max()) > 4096 else _PASSES_NARROW
    for shift, bits in passes:
        nbins = 1 << bits
        digit = (keys >> shift) & (nbins - 1)
        hist = torch.bincount(rows * nbins + digit, weights=in_play, minlength=n_rows * nbins)
        hist = hist.view(n_rows, nbins).to(torch.int64)
        above_eq = hist.flip(1).cumsum(1).flip(1)  # elements in bins >= j
        # the bin holding the k-th largest: the largest j with above_eq[j] >= remaining
        ok = above_eq >= remaining.unsqueeze(1)
        j = (ok.to(torch.int64) * torch.arange(nbins, device=dev)).amax(1)
        jj = j.unsqueeze(1)
        remaining = remaining - (above_eq.gather(1, jj) - hist.gather(1, jj)).squeeze(1)
        prefix = prefix | (j << shift)
        in_play = in_play * (digit == j[rows])
    kth = prefix[rows]
    ties = keys == kth
    return (keys > kth) | (ties & (segment_rank(ties, rows, counts) <= remaining[rows]))


def radix_select_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of exactly ``min(k, n)`` largest entries per row of ``scores`` [B, n].

    Ties at the k-th value go to the lowest indices. Sort-free: histogram passes.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, n], got shape {tuple(scores.shape)}")
    b, n = scores.shape
    rows = torch.arange(b, device=scores.device).repeat_interleave(n)
    return radix_select_rows(scores.reshape(-1), rows, b, int(k)).view(b, n)


def statistical_rows(scores: torch.Tensor, rows: torch.Tensor, n_rows: int, k: int) -> torch.Tensor:
    """Statistical top-k over a ragged row-sorted list: x >= mean + std Phi^-1(1 - k/n) per row."""
    x = scores.double()
    n = torch.bincount(rows, minlength=n_rows).clamp_min(1).double()
    mean = torch.bincount(rows, weights=x, minlength=n_rows) / n
    var = torch.bincount(rows, weights=(x - mean[rows]) ** 2, minlength=n_rows) / n
    q = (1.0 - k / n).clamp(1e-6, 1 - 1e-6)
    theta = mean + var.sqrt() * math.sqrt(2.0) * torch.erfinv(2 * q - 1)
    return x >= theta[rows]


def statistical_mask(
    scores: torch.Tensor, k: int, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Statistical top-k: x >= mean + std * Phi^-1(1 - k/n) per row (approximate count).

    ``valid`` restricts both the statistics and the selection to the marked entries.
    """
    x = scores.float()
    if valid is None:
        valid = torch.ones_like(x, dtype=torch.bool)
    n = valid.sum(1).clamp_min(1).to(x.dtype)
    xm = torch.where(valid, x, torch.zeros_like(x))
    mean = xm.sum(1) / n
    var = (torch.where(valid, (x - mean.unsqueeze(1)) ** 2, torch.zeros_like(x))).sum(1) / n
    q = (1.0 - torch.as_tensor(float(k), dtype=x.dtype) / n).clamp(1e-6, 1 - 1e-6)
    z = math.sqrt(2.0) * torch.erfinv(2 * q - 1)
    theta = mean + var.sqrt() * z
    return valid & (x >= theta.unsqueeze(1))


def mask_to_ids(mask: torch.Tensor, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Compact a [B, n] mask into ids [B, W] (ascending, padded with 0) and valid [B, W]."""
    b, n = mask.shape
    counts = mask.sum(1)
    w = int(counts.max().item()) if width is None else int(width)
    w = max(w, 1)
    pos = mask.to(torch.int64).cumsum(1) - 1  # slot of each selected entry
    ids = torch.zeros(b, w, dtype=torch.int64, device=mask.device)
    valid = torch.zeros(b, w, dtype=torch.bool, device=mask.device)
    keep = mask & (pos < w)
    rr, cc = keep.nonzero(as_tuple=True)
    ids[rr, pos[rr, cc]] = cc
    valid[rr, pos[rr, cc]] = True
    return ids, valid
