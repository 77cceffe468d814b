"""Exact hyperbolic k-nearest-neighbour topology without an N x N matrix.

A hyperbolic ball B_H(p, R) in the Poincaré ball is a Euclidean ball (see
:func:`rsgn.geometry.hyperbolic_ball_as_euclidean`), so a Euclidean k-d tree answers exact
hyperbolic queries in two stages:

1. take the ``m`` Euclidean-nearest candidates of p (m = 2k), compute their hyperbolic
   distances, and let R be the k-th smallest: the true k nearest lie within B_H(p, R);
2. query the Euclidean ball equivalent to B_H(p, R) and keep the k hyperbolically nearest.

Cost O(N log N + N k') for k' candidates per node instead of O(N^2).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree


def _hdist_np(p: np.ndarray, q: np.ndarray, ap: np.ndarray, aq: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsinh(np.linalg.norm(p - q, axis=-1) / np.sqrt(ap * aq))


def knn_hyperbolic(x: torch.Tensor, a: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [N, k] of each node's k nearest other nodes in hyperbolic distance.

    ``x`` are ball points [N, D], ``a = 1 - |x|^2`` their (accurately computed) conformal
    factors. Rows are ordered nearest first; ties broken by index.
    """
    n = x.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k must be in [1, N-1], got k={k}, N={n}")
    p = x.detach().double().cpu().numpy()
    ap = a.detach().double().cpu().numpy()
    tree = cKDTree(p)
    m = min(n, 2 * k + 1)
    _, cand = tree.query(p, k=m)
    cand = np.asarray(cand).reshape(n, m)
    dc = _hdist_np(p[:, None, :], p[cand], ap[:, None], ap[cand])
    dc[cand == np.arange(n)[:, None]] = np.inf
    radius = np.sort(dc, axis=1)[:, k - 1]
    # Euclidean ball equal to B_H(p, radius), inflated by a hair for float rounding.
    t = np.tanh(radius / 2)
    p2 = (p * p).sum(1)
    den = 1 - t * t * p2
    centre = ((1 - t * t) / den)[:, None] * p
    erad = t * ap / den * (1 + 1e-4) + 1e-12  # generous: extra hits are filtered below
    out = np.empty((n, k), dtype=np.int64)
    for i, nb in enumerate(tree.query_ball_point(centre, erad)):
        nb = np.union1d(np.asarray(nb, dtype=np.int64), cand[i])  # the ball always holds these
        nb = nb[nb != i]
        d = _hdist_np(p[i], p[nb], ap[i], ap[nb])
        order = np.lexsort((nb, d))[:k]
        out[i] = nb[order]
    return torch.from_numpy(out).to(x.device)


def knn_hyperbolic_bruteforce(x: torch.Tensor, a: torch.Tensor, k: int) -> torch.Tensor:
    """O(N^2) reference for :func:`knn_hyperbolic` (tests, small N)."""
    p = x.detach().double()
    ad = a.detach().double()
    d = 2 * torch.asinh(torch.cdist(p, p) / torch.sqrt(ad[:, None] * ad[None, :]))
    d.fill_diagonal_(float("inf"))
    order = torch.argsort(d, dim=1, stable=True)  # ties by index
    return order[:, :k].to(x.device)
