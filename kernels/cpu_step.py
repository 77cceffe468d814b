r"""The fused propagation step and the exact top-k select as numba CPU kernels, forward and
backward; imports only numpy and numba (never torch, the model or the backends).

Layout (the caller passes numpy views of contiguous tensors): the active state of sample b is
compact, ``ids/valid/alpha [B, W]``, ``h [B, W, d]``; ``g = alpha (W_h h)`` ``[B, W, d]`` is
computed by the caller (one GEMM: W_h is linear, so W_h sum w h = sum w W_h h); the graph is
the in-edge ELL table ``in_idx/in_mask/w [N, K]``, its out-edge CSR ``out_ptr [N+1]``,
``out_edge [E]`` (flat slot ids i K + s grouped by source) and the packed inhibition slots
``inh_idx/inh_valid [N, K_inh]``.

Forward, one sample per parallel iteration (``prange``), in four passes over that sample only:

1. candidates C: the active nodes and the destinations of their live out-edges (a push along
   the CSR marks them; a scan of the mark lists them in ascending node id);
2. for every candidate i, with s(j) the slot of node j in the sample (pull along in-edges, in
   slot order):

       h~_i    = sum_{q: s(in_idx[i,q]) >= 0} w_iq g[s(in_idx[i,q])]  +  b_h
       alpha_i = sigmoid((alpha_prev_i + gamma |h~_i| - theta_i) / T)

3. score_i = alpha_i / (1 + beta mean_{j in R(i)} alpha_j)  (alpha_j = 0 off C), then the
   exact top-cap of the scores (order-preserving 32-bit keys of the float32 score, ties to
   the lower node id: :func:`topk_keys`), kept where score > eps;
4. for each winner, h~ is recomputed by the same pull and h_i = LN(h~_i + h_prev_i) score_i
   (LayerNorm with weight, bias and eps ``ln_eps``; h_prev = 0 where i was not active).

Nothing of size |C| x d is stored: a candidate's message row lives in a d-vector while its norm
is taken. Every sum runs in a fixed order inside one iteration, so results do not depend on
the thread count.

Backward (:func:`step_backward`): gradient checkpointing with exact recomputation. The outputs
depend on the candidates' alphas only through the winners and their inhibition neighbours
("touched" rows T = winners + (R(winners) & C)); for those rows h~ and alpha are recomputed
bit for bit as in the forward and the chain rule is written out:

    h = LN(x) score, x = h~ + h_prev:   dL/dscore = <dL/dh, LN(x)> + dL/dalpha',
                                        dL/dx = rstd (u - mean(u) - x^ mean(u x^)),
                                        u = score (dL/dh) * ln_w
    score = alpha / (1 + beta m), m = (1/|R|) sum_R alpha_j:
                                        dL/dalpha_i += dL/dscore / (1 + beta m)
                                        dL/dalpha_j += -dL/dscore alpha beta / (1+beta m)^2 / |R|
    alpha = sigmoid(z), z = (alpha_prev + gamma |h~| - theta) / T:
                                        dL/dz = dL/dalpha alpha (1 - alpha) / T
                                        dL/dh~ += dL/dz gamma h~ / |h~|   (0 at |h~| = 0)
    h~ = sum w g + b_h:                 dL/dw_iq = <g_s, dL/dh~_i>,  dL/dg_s += w_iq dL/dh~_i

Per-sample partial sums (edge weights, thresholds, bias, LayerNorm) are written as records and
reduced serially in sample order (:func:`reduce_records`): bit-reproducible for any thread
count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_SIGN = 0x80000000
_MASK32 = 0xFFFFFFFF


@njit(cache=True)
def float_keys(vals, keys):  # pragma: no cover - compiled
    """Order-preserving unsigned 32-bit keys (in int64) of the float32 ``vals`` (as
    rsgn.selection.float_keys): flip every bit of a negative, set the sign bit otherwise."""
    u = vals.view(np.uint32)
    for i in range(vals.shape[0]):
        v = np.int64(u[i])
        keys[i] = _MASK32 - v if v & _SIGN else v | _SIGN


@njit(cache=True)
def topk_keys(keys, k, out):  # pragma: no cover - compiled
    """Mark in ``out`` (bool, len n) the ``min(k, n)`` largest ``keys`` (int64), ties at the
    k-th value to the lowest indices. O(n) on average (one ``np.partition``)."""
    n = keys.shape[0]
    if k >= n:
        for i in range(n):
            out[i] = True
        return
    for i in range(n):
        out[i] = False
    if k <= 0:
        return
    kth = np.partition(keys.copy(), n - k)[n - k]
    above = 0
    for i in range(n):
        if keys[i] > kth:
            above += 1
    ties = k - above
    for i in range(n):
        if keys[i] > kth:
            out[i] = True
        elif keys[i] == kth and ties > 0:
            out[i] = True
            ties -= 1


@njit(parallel=True, cache=True)
def select_dense(scores, k, out_ids):  # pragma: no cover - compiled
    """Exact top-``k`` of each row of ``scores`` [B, n] (float32), ties to the lower index:
    the selected column ids in ascending order into ``out_ids`` [B, min(k, n)]."""
    b_rows, n = scores.shape
    for b in prange(b_rows):
        keys = np.empty(n, np.int64)
        float_keys(scores[b], keys)
        mask = np.empty(n, np.bool_)
        topk_keys(keys, k, mask)
        p = 0
        for i in range(n):
            if mask[i]:
                out_ids[b, p] = i
                p += 1


@njit(cache=True, inline="always")
def _slot_map(ids, valid, b, n):  # pragma: no cover - compiled
    act = np.full(n, -1, np.int64)
    for s in range(ids.shape[1]):
        if valid[b, s]:
            act[ids[b, s]] = s
    return act


@njit(cache=True, inline="always")
def _pull(i, b, act, in_idx, in_mask, w, g, b_h, row, hs, hq):  # pragma: no cover - compiled
    """row = h~_i recomputed by a pull along the in-edges of i, summed in the forward's push
    order (source slot, then in-slot ascending: the same float32 sum, bit for bit) plus
    b_h; ``hs``/``hq`` are scratch of length K. Returns the number of contributing slots."""
    hits = 0
    for q in range(in_idx.shape[1]):
        if in_mask[i, q]:
            s = act[in_idx[i, q]]
            if s >= 0:
                u = hits  # insertion sort by (slot, in-slot)
                while u > 0 and hs[u - 1] > s:
                    hs[u] = hs[u - 1]
                    hq[u] = hq[u - 1]
                    u -= 1
                hs[u] = s
                hq[u] = q
                hits += 1
    row[:] = 0
    for u in range(hits):
        wq = w[i, hq[u]]
        s = hs[u]
        for c in range(row.shape[0]):
            row[c] += wq * g[b, s, c]
    for c in range(row.shape[0]):
        row[c] += b_h[c]
    return hits


@njit(cache=True, fastmath={"reassoc"})
def _norm(row):  # pragma: no cover - compiled
    """|row| with a float32 sum of squares; ``reassoc`` lets LLVM split the sum over vector
    lanes (a fixed order for a given build and CPU: 0.3 ms instead of 0.8 ms of a 2.7 ms
    N = 256 step, measured)."""
    acc = np.float32(0.0)
    for c in range(row.shape[0]):
        acc += row[c] * row[c]
    return math.sqrt(np.float64(acc))


@njit(cache=True, inline="always")
def _gate(alpha_prev, norm, theta_i, gamma, temperature):  # pragma: no cover - compiled
    """sigmoid((alpha_prev + gamma |h~| - theta) / T), rounded to float32."""
    z = (np.float64(alpha_prev) + gamma * norm - np.float64(theta_i)) / temperature
    return np.float32(1.0 / (1.0 + math.exp(-z)))


@njit(cache=True, inline="always")
def _is_candidate(j, act, in_idx, in_mask):  # pragma: no cover - compiled
    if act[j] >= 0:
        return True
    for q in range(in_idx.shape[1]):
        if in_mask[j, q] and act[in_idx[j, q]] >= 0:
            return True
    return False


@njit(cache=True, inline="always")
def _inhibition(i, cmap, a, inh_idx, inh_valid):  # pragma: no cover - compiled
    """(sum_{j in R(i), j in C} alpha_j, |R(i)| clamped to >= 1) with ``cmap`` node -> row."""
    tot = 0.0
    cnt = 0
    for q in range(inh_idx.shape[1]):
        if inh_valid[i, q]:
            cnt += 1
            r = cmap[inh_idx[i, q]]
            if r >= 0:
                tot += np.float64(a[r])
    return tot, max(cnt, 1)


@njit(cache=True, inline="always")
def _layer_norm(x, ln_w, ln_b, ln_eps, xhat, y):  # pragma: no cover - compiled
    """y = LN(x) (biased variance, eps ``ln_eps``); x^ into ``xhat``; returns 1/sigma."""
    d = x.shape[0]
    mean = 0.0
    for c in range(d):
        mean += np.float64(x[c])
    mean /= d
    var = 0.0
    for c in range(d):
        t = np.float64(x[c]) - mean
        var += t * t
    var /= d
    rstd = 1.0 / math.sqrt(var + ln_eps)
    for c in range(d):
        xh = (np.float64(x[c]) - mean) * rstd
        xhat[c] = xh
        y[c] = xh * ln_w[c] + ln_b[c]
    return rstd


@njit(cache=True, inline="always")
def _candidates(b, ids, valid, out_ptr, out_dst, n, cmap, cand):  # pragma: no cover - compiled
    """List the candidates of sample b (active nodes and the destinations of their live
    out-edges) in ascending node id into ``cand``, with ``cmap`` node -> row (all -1 on entry).
    Returns their number."""
    m = 0
    for s in range(ids.shape[1]):
        if valid[b, s]:
            j = ids[b, s]
            if cmap[j] == -1:
                cmap[j] = -2
                cand[m] = j
                m += 1
            for e in range(out_ptr[j], out_ptr[j + 1]):
                i = out_dst[e]
                if cmap[i] == -1:
                    cmap[i] = -2
                    cand[m] = i
                    m += 1
    if m * 16 > n:  # dense: a scan of the marks is cheaper than a sort
        r = 0
        for i in range(n):
            if cmap[i] == -2:
                cand[r] = i
                r += 1
    else:
        cand[:m] = np.sort(cand[:m])
    for r in range(m):
        cmap[cand[r]] = r
    return m


@njit(parallel=True, cache=True)
def step_forward(
    ids,
    valid,
    alpha,
    g,
    h_prev,
    in_idx,
    inh_idx,
    inh_valid,
    out_ptr,
    out_dst,
    out_w,
    b_h,
    theta,
    ln_w,
    ln_b,
    gamma,
    temperature,
    beta,
    cap,
    eps,
    ln_eps,
    out_ids,
    out_valid,
    out_alpha,
    out_h,
    per,
    m_max,
):  # pragma: no cover - compiled
    """One propagation step (see the module docstring) into ``out_*`` (``[B, W']``,
    ``[B, W', d]``, W' = min(cap, N)). ``out_dst``/``out_w`` [E]: destination node and weight
    of each out-edge in CSR order. ``per`` samples go to one parallel chunk, whose scratch is
    allocated once; ``m_max`` bounds the candidates of a sample."""
    n_batch, width = ids.shape
    n = in_idx.shape[0]
    d = g.shape[2]
    for ch in prange((n_batch + per - 1) // per):
        act = np.full(n, -1, np.int64)
        cmap = np.full(n, -1, np.int64)
        cand = np.empty(n, np.int64)
        a = np.empty(n, np.float32)
        score = np.empty(n, np.float32)
        keys = np.empty(n, np.int64)
        win = np.empty(n, np.bool_)
        ht = np.empty((m_max, d), np.float32)
        row = np.empty(d, np.float32)
        xhat = np.empty(d, np.float64)
        y = np.empty(d, np.float64)
        for b in range(ch * per, min(n_batch, (ch + 1) * per)):
            for s in range(width):
                if valid[b, s]:
                    act[ids[b, s]] = s
            m = _candidates(b, ids, valid, out_ptr, out_dst, n, cmap, cand)
            ht[:m] = 0
            # push along the out-edges, active slots in ascending order: h~ of every candidate
            for s in range(width):
                if valid[b, s]:
                    j = ids[b, s]
                    for e in range(out_ptr[j], out_ptr[j + 1]):
                        r = cmap[out_dst[e]]
                        wq = out_w[e]
                        for c in range(d):
                            ht[r, c] += wq * g[b, s, c]
            for r in range(m):
                for c in range(d):
                    ht[r, c] += b_h[c]
                i = cand[r]
                s = act[i]
                ap = alpha[b, s] if s >= 0 else 0.0
                a[r] = _gate(ap, _norm(ht[r]), theta[i], gamma, temperature)
            for r in range(m):
                if beta == 0.0:
                    score[r] = a[r]
                else:
                    tot, cnt = _inhibition(cand[r], cmap, a, inh_idx, inh_valid)
                    score[r] = np.float32(np.float64(a[r]) / (1.0 + beta * (tot / cnt)))
            float_keys(score[:m], keys[:m])
            topk_keys(keys[:m], cap, win[:m])
            p = 0
            for r in range(m):
                if not (win[r] and score[r] > eps):
                    continue
                i = cand[r]
                s = act[i]
                row[:] = ht[r]
                if s >= 0:
                    for c in range(d):
                        row[c] += h_prev[b, s, c]
                _layer_norm(row, ln_w, ln_b, ln_eps, xhat, y)
                sc = score[r]
                for c in range(d):
                    out_h[b, p, c] = y[c] * sc
                out_ids[b, p] = i
                out_valid[b, p] = True
                out_alpha[b, p] = sc
                p += 1
            for r in range(m):  # reset the maps for the next sample
                cmap[cand[r]] = -1
            for s in range(width):
                if valid[b, s]:
                    act[ids[b, s]] = -1


@njit(cache=True, inline="always")
def _touched(b, out_ids, out_valid, act, in_idx, in_mask, inh_idx, inh_valid, tmap, tlist):
    # pragma: no cover - compiled
    """Fill ``tlist`` with the winners of sample b, then their inhibition neighbours that are
    candidates (first-seen order); ``tmap`` node -> position. Returns the count."""
    t = 0
    for p in range(out_ids.shape[1]):
        if out_valid[b, p]:
            i = out_ids[b, p]
            tmap[i] = t
            tlist[t] = i
            t += 1
    n_win = t
    for u in range(n_win):
        i = tlist[u]
        for q in range(inh_idx.shape[1]):
            if inh_valid[i, q]:
                j = inh_idx[i, q]
                if tmap[j] < 0 and _is_candidate(j, act, in_idx, in_mask):
                    tmap[j] = t
                    tlist[t] = j
                    t += 1
    return t


@njit(parallel=True, cache=True)
def backward_counts(
    ids, valid, out_ids, out_valid, in_idx, in_mask, inh_idx, inh_valid, counts
):  # pragma: no cover - compiled
    """Per sample: ``counts[b] = (|T|, edges from active sources into T)``: the record counts
    of :func:`step_backward`."""
    n = in_idx.shape[0]
    cap_t = min(n, out_ids.shape[1] * (1 + inh_idx.shape[1]))
    for b in prange(ids.shape[0]):
        act = _slot_map(ids, valid, b, n)
        tmap = np.full(n, -1, np.int64)
        tlist = np.empty(cap_t, np.int64)
        nt = _touched(b, out_ids, out_valid, act, in_idx, in_mask, inh_idx, inh_valid, tmap, tlist)
        ne = 0
        for u in range(nt):
            j = tlist[u]
            for q in range(in_idx.shape[1]):
                if in_mask[j, q] and act[in_idx[j, q]] >= 0:
                    ne += 1
        counts[b, 0] = nt
        counts[b, 1] = ne


@njit(cache=True, fastmath={"reassoc"})
def _dot(x, y):  # pragma: no cover - compiled
    """<x, y> in float32 (``reassoc``: vector lanes, one order per build and CPU)."""
    acc = np.float32(0.0)
    for c in range(x.shape[0]):
        acc += x[c] * y[c]
    return acc


@njit(parallel=True, cache=True)
def step_backward(
    ids,
    valid,
    alpha,
    g,
    h_prev,
    in_idx,
    in_mask,
    w,
    inh_idx,
    inh_valid,
    b_h,
    theta,
    ln_w,
    ln_b,
    gamma,
    temperature,
    beta,
    ln_eps,
    out_ids,
    out_valid,
    grad_h,
    grad_alpha,
    counts,
    t_off,
    e_off,
    g_alpha,
    g_hprev,
    g_g,
    theta_node,
    theta_val,
    edge_id,
    edge_val,
    g_bh,
    g_lnw,
    g_lnb,
    per,
):  # pragma: no cover - compiled
    """Gradients of :func:`step_forward` (see the module docstring): into ``g_alpha [B, W]``,
    ``g_hprev``/``g_g [B, W, d]`` (float32, zero on entry) directly; per-sample records
    ``theta_node/theta_val`` (from ``t_off[b]``), ``edge_id/edge_val`` (from ``e_off[b]``) and
    rows ``g_bh/g_lnw/g_lnb [B, d]`` for :func:`reduce_records`. ``counts`` from
    :func:`backward_counts`; ``per`` samples per parallel chunk."""
    n_batch, width = ids.shape
    n, k_slots = in_idx.shape
    d = g.shape[2]
    cap_t = min(n, out_ids.shape[1] * (1 + inh_idx.shape[1]))
    for ch in prange((n_batch + per - 1) // per):
        b0, b1 = ch * per, min(n_batch, (ch + 1) * per)
        t_max = 1
        for b in range(b0, b1):
            t_max = max(t_max, counts[b, 0])
        act = np.full(n, -1, np.int64)
        tmap = np.full(n, -1, np.int64)
        tlist = np.empty(cap_t, np.int64)
        ht = np.empty((t_max, d), np.float32)
        g_ht = np.empty((t_max, d), np.float32)
        nrm = np.empty(t_max, np.float64)
        a = np.empty(t_max, np.float32)
        g_a = np.empty(t_max, np.float64)
        hs = np.empty(k_slots, np.int64)
        hq = np.empty(k_slots, np.int64)
        x = np.empty(d, np.float32)
        xhat = np.empty(d, np.float64)
        y = np.empty(d, np.float64)
        u_row = np.empty(d, np.float64)
        for b in range(b0, b1):
            for s in range(width):
                if valid[b, s]:
                    act[ids[b, s]] = s
            nt = _touched(
                b, out_ids, out_valid, act, in_idx, in_mask, inh_idx, inh_valid, tmap, tlist
            )
            for u in range(nt):
                j = tlist[u]
                _pull(j, b, act, in_idx, in_mask, w, g, b_h, ht[u], hs, hq)
                nrm[u] = _norm(ht[u])
                s = act[j]
                ap = alpha[b, s] if s >= 0 else 0.0
                a[u] = _gate(ap, nrm[u], theta[j], gamma, temperature)
            g_a[:nt] = 0.0
            g_ht[:nt] = 0.0
            for p in range(out_ids.shape[1]):
                if not out_valid[b, p]:
                    continue
                i = out_ids[b, p]
                u = tmap[i]
                if beta == 0.0:
                    den = 1.0
                    cnt = 1
                    score = a[u]
                else:
                    tot, cnt = _inhibition(i, tmap, a, inh_idx, inh_valid)
                    den = 1.0 + beta * (tot / cnt)
                    score = np.float32(np.float64(a[u]) / den)
                s = act[i]
                x[:] = ht[u]
                if s >= 0:
                    for c in range(d):
                        x[c] += h_prev[b, s, c]
                rstd = _layer_norm(x, ln_w, ln_b, ln_eps, xhat, y)
                g_score = np.float64(grad_alpha[b, p])
                for c in range(d):
                    gh = np.float64(grad_h[b, p, c])
                    g_score += gh * y[c]
                    gy = gh * score
                    g_lnw[b, c] += gy * xhat[c]
                    g_lnb[b, c] += gy
                    u_row[c] = gy * ln_w[c]
                m1 = 0.0
                m2 = 0.0
                for c in range(d):
                    m1 += u_row[c]
                    m2 += u_row[c] * xhat[c]
                m1 /= d
                m2 /= d
                for c in range(d):
                    gx = rstd * (u_row[c] - m1 - xhat[c] * m2)
                    g_ht[u, c] += gx
                    if s >= 0:
                        g_hprev[b, s, c] += gx
                g_a[u] += g_score / den
                if beta != 0.0:
                    gm = -g_score * np.float64(a[u]) * beta / (den * den) / cnt
                    for q in range(inh_idx.shape[1]):
                        if inh_valid[i, q]:
                            v = tmap[inh_idx[i, q]]
                            if v >= 0:
                                g_a[v] += gm
            to = t_off[b]
            eo = e_off[b]
            for u in range(nt):
                j = tlist[u]
                av = np.float64(a[u])
                gz = g_a[u] * av * (1.0 - av) / temperature
                s = act[j]
                if s >= 0:
                    g_alpha[b, s] += gz
                theta_node[to + u] = j
                theta_val[to + u] = -gz
                if nrm[u] > 0.0:
                    f = np.float32(gz * gamma / nrm[u])
                    for c in range(d):
                        g_ht[u, c] += f * ht[u, c]
                for c in range(d):
                    g_bh[b, c] += g_ht[u, c]
                gu = g_ht[u]
                for q in range(k_slots):
                    if in_mask[j, q]:
                        s2 = act[in_idx[j, q]]
                        if s2 >= 0:
                            wq = w[j, q]
                            for c in range(d):
                                g_g[b, s2, c] += wq * gu[c]
                            edge_id[eo] = j * k_slots + q
                            edge_val[eo] = _dot(g[b, s2], gu)
                            eo += 1
            for u in range(nt):  # reset the maps for the next sample
                tmap[tlist[u]] = -1
            for s in range(width):
                if valid[b, s]:
                    act[ids[b, s]] = -1


@njit(cache=True)
def reduce_records(theta_node, theta_val, edge_id, edge_val, g_theta, g_w):
    # pragma: no cover - compiled
    """g_theta[node] += val and g_w[edge] += val over the records, serially in record (sample)
    order: one summation order whatever the thread count."""
    for r in range(theta_node.shape[0]):
        g_theta[theta_node[r]] += theta_val[r]
    for r in range(edge_id.shape[0]):
        g_w[edge_id[r]] += edge_val[r]
