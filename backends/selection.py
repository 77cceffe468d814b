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


def radix_select_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of exactly ``min(k, n)`` largest entries per row of ``scores`` [B, n].

    Ties at the k-th value go to the lowest indices. Sort-free: three histogram passes.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, n], got shape {tuple(scores.shape)}")
    b, n = scores.shape
    k = min(int(k), n)
    if k <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    if k == n:
        return torch.ones_like(scores, dtype=torch.bool)
    keys = float_keys(scores)
    rows = torch.arange(b, device=scores.device).unsqueeze(1).expand(b, n)
    prefix = torch.zeros(b, dtype=torch.int64, device=scores.device)  # selected high bits
    remaining = torch.full((b,), k, dtype=torch.int64, device=scores.device)
    in_play = torch.ones_like(keys, dtype=torch.bool)
    for shift, bits in _PASSES_WIDE if n > 4096 else _PASSES_NARROW:
        nbins = 1 << bits
        digit = (keys >> shift) & (nbins - 1)
        flat = (rows * nbins + digit).reshape(-1)
        hist = (
            torch.bincount(flat, weights=in_play.reshape(-1).to(torch.float64), minlength=b * nbins)
            .view(b, nbins)
            .to(torch.int64)
        )
        # count of elements in bins >= j (descending cumulative)
        above_eq = hist.flip(1).cumsum(1).flip(1)
        # the bin holding the k-th largest: the largest j with above_eq[j] >= remaining
        ok = above_eq >= remaining.unsqueeze(1)
        j = (ok.to(torch.int64) * torch.arange(nbins, device=keys.device)).amax(1)
        above = above_eq.gather(1, j.unsqueeze(1)).squeeze(1) - hist.gather(
            1, j.unsqueeze(1)
        ).squeeze(1)
        remaining = remaining - above
        prefix = prefix | (j << shift)
        in_play = in_play & (digit == j.unsqueeze(1))
    kth = prefix.unsqueeze(1)
    greater = keys > kth
    ties = keys == kth
    tie_rank = ties.to(torch.int64).cumsum(1)
    return greater | (ties & (tie_rank <= remaining.unsqueeze(1)))


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
