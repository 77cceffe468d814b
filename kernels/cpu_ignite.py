r"""Ignition as numba CPU kernels: the nearest spark of every node, the exact top-cap per sample
and the spark-node distances with their backward; imports only numpy and numba.

- :func:`nearest_spark`: delta_bi = min_t |s_bt - p_i|^2 / (a_bt a_i) and its argmin, with
  |s - p|^2 = |s|^2 + |p|^2 - 2 s.p as in ``rsgn.ops.nearest_spark`` (clamped at 0), one
  sample per parallel iteration, nodes in blocks that stay in cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_BLOCK = 256


@njit(parallel=True, cache=True)
def nearest_spark(sparks, spark_a, xt, a, dmin, tok):  # pragma: no cover - compiled
    """``dmin [B, N]``, ``tok [B, N]`` from sparks [B, T, D], their conformal factors [B, T],
    the node positions transposed ``xt [D, N]`` and theirs ``a [N]``.

    Nodes go in blocks of ``_BLOCK`` copied into a padded [blocks, D, _BLOCK] layout (padding:
    |p|^2 = inf, never nearest), so each sample's inner loops have a fixed trip count and
    vectorise, and a block stays in cache over all tokens."""
    n_batch, n_tok, dim = sparks.shape
    n = xt.shape[1]
    n_blk = (n + _BLOCK - 1) // _BLOCK
    xb = np.zeros((n_blk, dim, _BLOCK), np.float32)
    p2 = np.full((n_blk, _BLOCK), np.inf, np.float32)
    for i in range(n):
        q, r = i // _BLOCK, i % _BLOCK
        acc = np.float32(0.0)
        for k in range(dim):
            xb[q, k, r] = xt[k, i]
            acc += xt[k, i] * xt[k, i]
        p2[q, r] = acc
    for b in prange(n_batch):
        acc = np.empty(_BLOCK, np.float32)
        best = np.empty(_BLOCK, np.float32)
        arg = np.empty(_BLOCK, np.int64)
        for q in range(n_blk):
            xq = xb[q]
            pq = p2[q]
            best[:] = np.inf
            arg[:] = 0
            for t in range(n_tok):
                s2 = np.float32(0.0)
                for k in range(dim):
                    s2 += sparks[b, t, k] * sparks[b, t, k]
                acc[:] = 0
                for k in range(dim):
                    sk = sparks[b, t, k]
                    xk = xq[k]
                    for i in range(_BLOCK):
                        acc[i] += sk * xk[i]
                sa = spark_a[b, t]
                for i in range(_BLOCK):  # branch-free, so LLVM vectorises it
                    num = s2 + pq[i] - np.float32(2.0) * acc[i]
                    v = (num if num > np.float32(0.0) else np.float32(0.0)) / sa
                    better = v < best[i]
                    best[i] = v if better else best[i]
                    arg[i] = t if better else arg[i]
            for i in range(min(_BLOCK, n - q * _BLOCK)):
                dmin[b, q * _BLOCK + i] = best[i] / a[q * _BLOCK + i]
                tok[b, q * _BLOCK + i] = arg[i]
