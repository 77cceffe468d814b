"""The fused propagation step: propagate -> inhibit -> select -> update in four launches, with
no candidate list, no out-edge gather and no host synchronisation inside the step.

Layout. The active state of sample b is compact (``h [B, W, d]``, ``alpha [B, W]``); a
``[B, N]`` int32 *slot map* says which slot (or -1) holds node j in sample b. The graph is
pulled along in-edges (ELL, ``K`` slots per node, ``src`` = -1 on dead slots), so the batch is
folded into the grid's columns and each node's in-edge row is read once per sample block.

1. **scores** (grid ``B x N/BLOCK_N``): for every node i of sample b

       h~_i = sum_{s: src_is active in b} w_is g_b[slot(src_is)] + b_h,   g = alpha (W_h h)
       alpha_i = sigmoid((alpha_prev_i + gamma |h~_i| - theta_i) / T)

   written as ``alpha [B, N]`` (0 for non-candidates) and a candidate flag (reached from the
   active set, or in it). Rows with no active in-neighbour cost K index loads and no gathers
   (masked loads move no data).
2. **inhibit** (same grid): score_i = alpha_i / (1 + beta mean_{j in R(i)} alpha_j) on
   candidates, -inf elsewhere (R(i) from the graph's packed inhibition slots).
3. **select**: the exact radix select (``kernels.select``) over the ``[B, N]`` scores, then
   ``score > eps``; compaction to ``ids [B, W]`` (ascending node id, like the reference).
4. **update** (grid ``B x W/BLOCK_W``): for each winner, h~ is *recomputed* by the same pull
   (|A| K gathers, cheaper than storing h~ for every candidate), then

       h_i = LN(h~_i + h_prev_i) * score_i,   LN with the model's weight, bias, eps 1e-5.

The d x d transform ``g = alpha (W_h h)`` is one GEMM before step 1 (W_h is linear, so
W_h sum w h = sum w W_h h): d^2 work per *active* node, not per edge.

Gradients (the triton target's ``FusedStep``): the forward runs the kernels without building a
graph of its own; the backward recomputes the step with the reference decomposition
(``rsgn.ops.propagate`` / ``inhibit`` / ``update`` with whatever primitives the caller's op
table gives) on the *same* winners and differentiates that: gradient checkpointing, exact with
respect to the reference, nothing stored but the inputs and the winners.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import check_device, device_scalars, next_pow2

_BLOCK_I = 128
_BLOCK_W = 16
LN_EPS = 1e-5


@triton.jit
def _gather_hits(acc, b, src, live, wv, slot_ptr, g_ptr, N, W, D, offs_d, dmask):
    """acc[r, :] += sum_s w[r, s] g[b, slot(b, src[r, s])] over the in-edges of each row whose
    source is active in sample b; returns (acc, hits per row).

    ``src``/``wv`` are [rows, K] tiles, so every slot lookup of a row is in flight at once;
    the message rows are then gathered hit by hit (the t-th hit of each row in round t):
    max-hits-per-row rounds, not K. (Measured on an H100 and dropped: a per-sample activity
    bitmap tested before the slot lookup, 8% slower at N = 65k and 1.5x slower at 1M, since
    it adds a dependent load to every lookup.)
    """
    sl = tl.load(slot_ptr + b.to(tl.int64) * N + src, mask=live, other=-1)
    hit = live & (sl >= 0)
    hit_i = hit.to(tl.int32)
    hits = tl.sum(hit_i, axis=1)
    rank = tl.cumsum(hit_i, axis=1) - 1
    for t in range(tl.max(hits, axis=0)):
        pick = hit & (rank == t)
        sl_t = tl.sum(tl.where(pick, sl, 0), axis=1)
        w_t = tl.sum(tl.where(pick, wv, 0.0), axis=1)
        has = hits > t
        grow = b.to(tl.int64) * W + sl_t
        gv = tl.load(
            g_ptr + grow[:, None] * D + offs_d[None, :],
            mask=has[:, None] & dmask[None, :],
            other=0.0,
        )
        acc += w_t[:, None] * gv
    return acc, hits


@triton.jit
def _in_tiles(src_ptr, w_ptr, rows, rmask, K, KP: tl.constexpr):
    """The [rows, K] in-edge tiles: source ids, live flags, weights."""
    cols = tl.arange(0, KP)
    m2 = rmask[:, None] & (cols[None, :] < K)
    eoff = rows.to(tl.int64)[:, None] * K + cols[None, :]
    src = tl.load(src_ptr + eoff, mask=m2, other=-1)
    live = m2 & (src >= 0)
    wv = tl.load(w_ptr + eoff, mask=live, other=0.0)
    return tl.where(live, src, 0), live, wv


@triton.jit
def _scores_kernel(
    src_ptr,
    w_ptr,
    amask_ptr,
    slot_ptr,
    g_ptr,
    ap_ptr,
    bias_ptr,
    theta_ptr,
    par_ptr,
    alpha_ptr,
    cand_ptr,
    hits_ptr,
    pos_ptr,
    hbuf_ptr,
    cnt_ptr,
    B,
    N,
    W,
    D,
    K,
    NW,
    CAP,
    BB: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    KP: tl.constexpr,
    COUNT: tl.constexpr,
    MASK: tl.constexpr,
    STORE: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    src, live, wv = _in_tiles(src_ptr, w_ptr, rows, rmask, K, KP)
    bias = tl.load(bias_ptr + offs_d, mask=dmask, other=0.0)
    th = tl.load(theta_ptr + rows, mask=rmask, other=0.0)
    gamma = tl.load(par_ptr)
    inv_t = tl.load(par_ptr + 1)
    if MASK:  # activity words of the sources, one load per in-slot for all BB (= 32) samples
        aw = tl.load(amask_ptr + src.to(tl.int64) * NW + tl.program_id(1), mask=live, other=0)
    for bi in range(BB):  # batch folding: the in-edge tiles serve BB samples
        b = tl.program_id(1) * BB + bi
        bok = (tl.zeros_like(rows) + b) < B  # as a [rows] vector (the interpreter wants one)
        rm = rmask & bok
        lv = live & bok[:, None]
        if MASK:  # only in-slots whose source is active in sample b look up its slot
            lv = lv & (((aw >> bi) & 1) != 0)
        acc = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
        acc, hits = _gather_hits(acc, b, src, lv, wv, slot_ptr, g_ptr, N, W, D, offs_d, dmask)
        ht = tl.where(dmask[None, :], acc + bias[None, :], 0.0)
        nrm = tl.sqrt(tl.sum(ht * ht, axis=1))
        own = tl.load(slot_ptr + b * N + rows, mask=rm, other=-1)
        ap = tl.load(ap_ptr + b * W + own, mask=rm & (own >= 0), other=0.0)
        z = (ap + gamma * nrm - th) * inv_t
        alpha = 1.0 / (1.0 + tl.exp(-z))
        cand = (hits > 0) | (own >= 0)
        tl.store(alpha_ptr + b * N + rows, tl.where(cand, alpha, 0.0), mask=rm)
        tl.store(cand_ptr + b * N + rows, cand.to(tl.int8), mask=rm)
        if COUNT:
            tl.store(hits_ptr + b * N + rows, hits, mask=rm)
        if STORE:  # keep the message sum of rows with hits, for the update kernel
            reached = rm & (hits > 0)
            p = tl.atomic_add(cnt_ptr + b + tl.zeros_like(rows), 1, mask=reached)
            keep = reached & (p < CAP)
            tl.store(pos_ptr + b * N + rows, tl.where(keep, p, -1), mask=rm)
            brow = (b * CAP + p).to(tl.int64)
            tl.store(
                hbuf_ptr + brow[:, None] * D + offs_d[None, :],
                acc,
                mask=keep[:, None] & dmask[None, :],
            )


@triton.jit
def _inhibit_kernel(
    alpha_ptr,
    cand_ptr,
    inh_ptr,
    par_ptr,
    score_ptr,
    N,
    KI,
    BLOCK_N: tl.constexpr,
    KIP: tl.constexpr,
):
    b = tl.program_id(1).to(tl.int64)
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    cols = tl.arange(0, KIP)
    c = tl.load(cand_ptr + b * N + rows, mask=rmask, other=0)
    # non-candidates score -inf whatever their neighbours do, so their inhibition slots and
    # the neighbours' gates are not loaded (at N = 65k, k = 16, 92% of rows have no active
    # in-edge with D = 3, 35% with D = 8: studies/gpu_kernels/hits*.json)
    m2 = (rmask & (c != 0))[:, None] & (cols[None, :] < KI)
    j = tl.load(inh_ptr + rows.to(tl.int64)[:, None] * KI + cols[None, :], mask=m2, other=-1)
    ok = m2 & (j >= 0)
    total = tl.sum(tl.load(alpha_ptr + b * N + j, mask=ok, other=0.0), axis=1)
    cnt = tl.sum(ok.to(tl.float32), axis=1)
    beta = tl.load(par_ptr + 2)
    a = tl.load(alpha_ptr + b * N + rows, mask=rmask, other=0.0)
    score = a / (1.0 + beta * (total / tl.maximum(cnt, 1.0)))
    tl.store(score_ptr + b * N + rows, tl.where(c != 0, score, float("-inf")), mask=rmask)


@triton.jit
def _update_kernel(
    ids_ptr,
    valid_ptr,
    score_ptr,
    src_ptr,
    w_ptr,
    slot_ptr,
    g_ptr,
    hprev_ptr,
    bias_ptr,
    lnw_ptr,
    lnb_ptr,
    h_ptr,
    a_ptr,
    pos_ptr,
    hbuf_ptr,
    N,
    W,
    W2,
    D,
    K,
    CAP,
    eps,
    BLOCK_W: tl.constexpr,
    BLOCK_D: tl.constexpr,
    KP: tl.constexpr,
    STORE: tl.constexpr,
):
    b = tl.program_id(1)
    slots = tl.program_id(0) * BLOCK_W + tl.arange(0, BLOCK_W)
    smask = slots < W2
    offs_d = tl.arange(0, BLOCK_D)
    dmask = offs_d < D
    node = tl.load(ids_ptr + b * W2 + slots, mask=smask, other=0)
    v = tl.load(valid_ptr + b * W2 + slots, mask=smask, other=0) != 0
    vm = smask & v
    acc = tl.zeros([BLOCK_W, BLOCK_D], dtype=tl.float32)
    redo = vm
    if STORE:  # winners whose message sum the scores kernel kept load it; the rest recompute
        p = tl.load(pos_ptr + b * N + node, mask=vm, other=-1)
        kept = vm & (p >= 0)
        brow = (b * CAP + p).to(tl.int64)
        acc = tl.load(
            hbuf_ptr + brow[:, None] * D + offs_d[None, :],
            mask=kept[:, None] & dmask[None, :],
            other=0.0,
        )
        redo = vm & (p < 0)
    src, live, wv = _in_tiles(src_ptr, w_ptr, node, redo, K, KP)
    acc, hits = _gather_hits(acc, b, src, live, wv, slot_ptr, g_ptr, N, W, D, offs_d, dmask)
    bias = tl.load(bias_ptr + offs_d, mask=dmask, other=0.0)
    own = tl.load(slot_ptr + b * N + node, mask=vm, other=-1)
    prow = (b * W + own).to(tl.int64)
    hp = tl.load(
        hprev_ptr + prow[:, None] * D + offs_d[None, :],
        mask=(vm & (own >= 0))[:, None] & dmask[None, :],
        other=0.0,
    )
    x = tl.where(dmask[None, :], acc + bias[None, :] + hp, 0.0)
    mean = tl.sum(x, axis=1) / D
    xc = tl.where(dmask[None, :], x - mean[:, None], 0.0)
    var = tl.sum(xc * xc, axis=1) / D
    rstd = 1.0 / tl.sqrt(var + eps)
    lw = tl.load(lnw_ptr + offs_d, mask=dmask, other=0.0)
    lb = tl.load(lnb_ptr + offs_d, mask=dmask, other=0.0)
    a = tl.load(score_ptr + b * N + node, mask=vm, other=0.0)
    a = tl.where(vm, a, 0.0)
    y = (xc * rstd[:, None] * lw[None, :] + lb[None, :]) * a[:, None]
    tl.store(
        h_ptr + (b * W2 + slots)[:, None].to(tl.int64) * D + offs_d[None, :],
        y,
        mask=smask[:, None] & dmask[None, :],
    )
    tl.store(a_ptr + b * W2 + slots, a, mask=smask)


# ------------------------------------------------------------------------------- launchers
def graph_tables(
    in_idx: torch.Tensor, in_mask: torch.Tensor, inh_idx: torch.Tensor, inh_valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 ELL tables with -1 on dead slots: (src [N, K], inh [N, K_inh])."""
    src = torch.where(in_mask, in_idx, torch.full_like(in_idx, -1)).to(torch.int32).contiguous()
    inh = torch.where(inh_valid, inh_idx, torch.full_like(inh_idx, -1)).to(torch.int32)
    return src, inh.contiguous()


def slot_map(ids: torch.Tensor, valid: torch.Tensor, n: int) -> torch.Tensor:
    """[B, N] int32: slot of node j in sample b's active state, -1 if inactive."""
    b, w = ids.shape
    out = torch.full((b, n), -1, dtype=torch.int32, device=ids.device)
    slots = torch.arange(w, dtype=torch.int32, device=ids.device).expand(b, w)
    vals = torch.where(valid, slots, torch.full_like(slots, -1))
    # no boolean indexing (a host sync): padding slots scatter -1, and amax keeps real slots
    return out.scatter_reduce_(1, ids, vals, reduce="amax", include_self=True)


TUNING = {"BB": 1, "BLOCK_N": 16, "num_warps": 4, "MASK": False, "STORE": False, "STORE_ROWS": 4}
"""Launch parameters of the scores kernel: samples per program (batch folding: the in-edge
tiles are loaded once for BB samples), rows per program, warps. Defaults from
``studies/gpu_kernels/step_bench.py --tune`` on an H100 at N = 65k, measured on a variant that
also tested an activity bitmap (since removed): BB 1, 16 rows, 4 warps 5.0 ms; BB 8 6.2 ms;
8 warps 6.6 ms. Batch folding did not pay there: the in-edge tiles are L2-resident anyway.

``MASK`` (off; written without a GPU, **not timed**): node-major activity words
(:func:`activity_words`, bit ``b % 32`` of word ``b // 32`` of node j = j active in sample b),
loaded once per in-slot for a block of 32 samples (BB is then 32), so only in-slots whose
source is active look up the slot map: at N = 65k, k = 16, B = 64, 3.4M lookups (D = 3, the
geometry the H100 profile was taken on) or 10.1M (D = 8, the default since) plus 2.1M word
loads, instead of the 67M the profile blames (counted: ``studies/gpu_kernels/hits.py``). Same
results (tested under the interpreter); ``step_bench.py --variants MASK`` times it against the
default.

``STORE`` (off; written without a GPU, **not timed**): the scores kernel keeps the message sum
of every row with an active in-edge, compacted per sample (an atomic counter hands out rows of
a ``[B, STORE_ROWS x W, d]`` buffer; rows past that capacity are not kept), and the update
kernel loads a winner's kept sum instead of recomputing it (its K slot lookups and gathers).
Same sums in the same order, so the same results bit for bit (tested under the interpreter).
Counted in ``studies/gpu_kernels/hits.py``: the recomputation gathers 2.97M rows at N = 65k,
k = 16, D = 3 (88% as many as the scores kernel); keeping the sums writes the rows with an
active in-edge (7.6% of B x N there: 0.16 GB). ``STORE_ROWS`` = 4 holds them at D = 3 (about
1.5 W per sample); at D = 8 (65% of the rows, about 13 W) most overflow and are recomputed
unless it is raised (memory: B x STORE_ROWS x W x d x 4 bytes, 0.43 GB at N = 65k)."""


def activity_words(slots: torch.Tensor) -> torch.Tensor:
    """``[N, ceil(B / 32)]`` int64 words from the ``[B, N]`` slot map: bit ``b % 32`` of word
    ``b // 32`` of row j is set iff node j is active in sample b (each (b, j) once, so the sum
    of distinct bits is their OR)."""
    bsz, n = slots.shape
    nw = -(-bsz // 32)
    act = torch.zeros(nw * 32, n, dtype=torch.int64, device=slots.device)
    act[:bsz] = (slots >= 0).to(torch.int64)
    bits = torch.arange(32, device=slots.device, dtype=torch.int64).view(1, 32, 1)
    return (act.view(nw, 32, n) << bits).sum(1).t().contiguous()


def scores(
    src: torch.Tensor,
    w: torch.Tensor,
    slots: torch.Tensor,
    g: torch.Tensor,
    alpha_prev: torch.Tensor,
    bias: torch.Tensor,
    theta: torch.Tensor,
    gamma: float,
    temperature: float,
    beta: float,
    count: bool = False,
) -> tuple[
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor | None,
    tuple[torch.Tensor, torch.Tensor, int] | None,
]:
    """Step 1: (alpha [B, N] (0 off the candidates), candidate flag [B, N] int8, kernel
    scalars, hits per row [B, N] or None, the kept message sums for :func:`update` or None:
    (row of each (b, i) in the buffer or -1 [B, N], buffer [B x cap, d], cap))."""
    check_device(src, w, slots, g)
    bsz, n = slots.shape
    width = alpha_prev.shape[1]
    d = g.shape[-1]
    dev = g.device
    par = device_scalars((float(gamma), 1.0 / float(temperature), float(beta)), dev)
    alpha = torch.empty(bsz, n, dtype=torch.float32, device=dev)
    cand = torch.empty(bsz, n, dtype=torch.int8, device=dev)
    hits = torch.empty(bsz, n, dtype=torch.int32, device=dev) if count else alpha
    bb, block_n = int(TUNING["BB"]), int(TUNING["BLOCK_N"])
    mask = bool(TUNING["MASK"])
    amask = activity_words(slots) if mask else slots
    if mask:
        bb = 32  # one activity word per program
    store = bool(TUNING["STORE"])
    cap = max(1, min(n, int(TUNING["STORE_ROWS"] * width))) if store else 1
    if store:
        pos = torch.empty(bsz, n, dtype=torch.int32, device=dev)
        hbuf = torch.empty(bsz * cap, d, dtype=torch.float32, device=dev)
        cnt = torch.zeros(bsz, dtype=torch.int32, device=dev)
    else:
        pos, hbuf, cnt = slots, alpha, slots  # placeholders, not accessed
    grid = (triton.cdiv(n, block_n), triton.cdiv(bsz, bb))
    _scores_kernel[grid](
        src,
        w.float().contiguous(),
        amask,
        slots,
        g.float().contiguous(),
        alpha_prev.float().contiguous(),
        bias.float().contiguous(),
        theta.float().contiguous(),
        par,
        alpha,
        cand,
        hits,
        pos,
        hbuf,
        cnt,
        bsz,
        n,
        width,
        d,
        src.shape[1],
        amask.shape[1] if mask else 1,
        cap,
        BB=bb,
        BLOCK_N=block_n,
        BLOCK_D=next_pow2(d),
        KP=next_pow2(src.shape[1]),
        COUNT=bool(count),
        MASK=mask,
        STORE=store,
        num_warps=int(TUNING["num_warps"]),
    )
    kept = (pos, hbuf, cap) if store else None
    return alpha, cand, par, (hits if count else None), kept


def inhibit(
    alpha: torch.Tensor, cand: torch.Tensor, inh: torch.Tensor, par: torch.Tensor
) -> torch.Tensor:
    """Step 2: divisive inhibition on candidates, -inf elsewhere: score [B, N]."""
    bsz, n = alpha.shape
    score = torch.empty_like(alpha)
    _inhibit_kernel[(triton.cdiv(n, _BLOCK_I), bsz)](
        alpha,
        cand,
        inh,
        par,
        score,
        n,
        inh.shape[1],
        BLOCK_N=_BLOCK_I,
        KIP=next_pow2(inh.shape[1]),
    )
    return score


def update(
    ids: torch.Tensor,
    valid: torch.Tensor,
    score: torch.Tensor,
    src: torch.Tensor,
    w: torch.Tensor,
    slots: torch.Tensor,
    g: torch.Tensor,
    hprev: torch.Tensor,
    bias: torch.Tensor,
    ln_w: torch.Tensor,
    ln_b: torch.Tensor,
    kept: tuple[torch.Tensor, torch.Tensor, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 4: (h [B, W', d], alpha [B, W']) of the winners; ``kept`` (from :func:`scores`
    with ``TUNING["STORE"]``): load the winners' kept message sums instead of recomputing."""
    bsz, w2 = ids.shape
    n = slots.shape[1]
    width, d = hprev.shape[1], hprev.shape[2]
    dev = g.device
    h = torch.empty(bsz, w2, d, dtype=torch.float32, device=dev)
    a = torch.empty(bsz, w2, dtype=torch.float32, device=dev)
    _update_kernel[(triton.cdiv(w2, _BLOCK_W), bsz)](
        ids.contiguous(),
        valid.to(torch.int8).contiguous(),
        score,
        src,
        w.float().contiguous(),
        slots,
        g.float().contiguous(),
        hprev.float().contiguous(),
        bias.float().contiguous(),
        ln_w.float().contiguous(),
        ln_b.float().contiguous(),
        h,
        a,
        kept[0] if kept else slots,
        kept[1] if kept else h,
        n,
        width,
        w2,
        d,
        src.shape[1],
        kept[2] if kept else 1,
        LN_EPS,
        BLOCK_W=_BLOCK_W,
        BLOCK_D=next_pow2(d),
        KP=next_pow2(src.shape[1]),
        STORE=kept is not None,
    )
    return h, a
