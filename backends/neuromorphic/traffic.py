r"""The chip program's communication rounds, declared as phases of the simulator
(:meth:`rsgn.neuromorphic.StepContext.phase`): each phase is compute on some cores, then
messages between cores (or to and from the host, core -1), timed on the event-driven mesh and
charged per class. Every message carries one 32-bit value per packet.

=================  =========================================================================
class              traffic
=================  =========================================================================
io_in / io_out     the input tokens host -> root core / the logits root core -> host
front_end          the root's token encoder and spark MLP; the sparks (D + 1 values per
                   token) broadcast to every core holding a node
ignite             each gate core's distances to the sparks, then the ignition selection
select             rounds of the k-winners selection (ignition's and each step's): every core
                   holding candidates sends the non-zero bins of its histogram to the root,
                   the root adds them and sends its decision back (:class:`.node_program.Round`)
init               initial states: 'attend': the token features to the gate cores of the
                   ignited nodes; 'mean': the root's h(0) to their state cores; the h(0) slices
                   of split nodes
inhibit            a candidate's activation to the cores of the candidates it inhibits (one
                   packet per (node, destination core) pair on another core)
threshold, update  the soft threshold and the LayerNorm update (compute on the gate / state
                   cores)
exchange           split nodes: partials to the gate slice (3 values per state slice per
                   candidate), score, mean and 1/std back (3 values per winner and slice), the
                   all-gather of h among the state slices before the projection
project            the W_h projection of the emitting nodes (graded MACs on the state cores)
readout            each core's partial sum of alpha_i h_i (and alpha_i R_i) to the root; the
                   root's readout
=================  =========================================================================
"""

from __future__ import annotations

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.backends.neuromorphic.mapping import Layout
from rsgn.backends.neuromorphic.node_program import OP_HIST, Selection

HOST = -1


def per_core(n_cores: int, cores: np.ndarray, counts: np.ndarray | int) -> np.ndarray:
    """Per-core totals of ``counts`` (one per entry of ``cores``)."""
    w = np.broadcast_to(np.asarray(counts, dtype=np.int64), np.shape(cores))
    return np.bincount(np.asarray(cores, dtype=np.int64), weights=w, minlength=n_cores).astype(
        np.int64
    )


def broadcast(
    ctx: nm.StepContext,
    name: str,
    src: int,
    dst: np.ndarray,
    packets: int,
    *,
    compute: dict[str, np.ndarray] | None = None,
    rx_ops: int = 0,
) -> None:
    """One phase: ``packets`` values from core ``src`` to each core of ``dst`` (the same core
    needs no packet)."""
    d = np.unique(np.asarray(dst, dtype=np.int64))
    d = d[d != src]
    ctx.phase(
        name,
        compute=compute,
        src=np.full(d.size, src, dtype=np.int64),
        dst=d,
        packets=max(1, packets),
        rx_ops=rx_ops,
    )


def gather(
    ctx: nm.StepContext,
    name: str,
    src: np.ndarray,
    packets: np.ndarray,
    dst: int,
    *,
    compute: dict[str, np.ndarray] | None = None,
) -> None:
    """One phase: each core of ``src`` sends ``packets`` values to core ``dst``, which adds each
    one (one instruction per packet); a core's values to itself need no packet."""
    s = np.asarray(src, dtype=np.int64)
    pk = np.broadcast_to(np.asarray(packets, dtype=np.int64), s.shape)
    keep = (s != dst) & (pk > 0)
    ctx.phase(
        name,
        compute=compute,
        src=s[keep],
        dst=np.full(int(keep.sum()), dst, dtype=np.int64),
        packets=pk[keep],
        rx_ops=pk[keep],
    )


def selection(
    ctx: nm.StepContext,
    name: str,
    sel: Selection,
    cores: np.ndarray,
    root: int,
    *,
    first: np.ndarray | None = None,
) -> None:
    """The reduction rounds of a selection over candidates living on ``cores`` (module
    docstring); ``first`` is compute (neuron-program instructions per core) that precedes the
    first round (the scores the selection ranks)."""
    n_cores = ctx.n_cores
    pre = np.zeros(n_cores, dtype=np.int64) if first is None else first
    if sel.local_ops:
        pre = pre + per_core(n_cores, cores, sel.local_ops // max(1, cores.size))
    if not sel.rounds:
        if pre.any():
            ctx.phase(name, compute={"neuron_op": pre})
        return
    part = np.unique(cores)
    for k, rnd in enumerate(sel.rounds):
        play = rnd.in_play
        ops = per_core(n_cores, cores[play], OP_HIST)
        if k == 0:
            ops = ops + pre
        # packets: the non-zero bins of each core's histogram, at least one per core
        key = np.unique(cores[play] * (rnd.n_bins + 1) + rnd.digit[play])
        bins = np.bincount(key // (rnd.n_bins + 1), minlength=n_cores)
        pk = np.maximum(bins[part], 1)
        gather(ctx, name, part, pk, root, compute={"neuron_op": ops})
        down = np.zeros(n_cores, dtype=np.int64)
        down[root] = rnd.n_bins  # the root scans the bins
        broadcast(ctx, name, root, part, 1, compute={"neuron_op": down})


def inhibition(
    ctx: nm.StepContext,
    layout: Layout,
    cand: np.ndarray,
    inh_idx: np.ndarray,
    inh_valid: np.ndarray,
    compute: np.ndarray,
) -> None:
    """A candidate's activation to the gate cores of the candidates it inhibits, on other
    cores: one packet per (candidate j, destination core); the receiver adds it for every
    candidate i on that core with j in R(i). ``compute`` precedes the sending."""
    gate = layout.gate_cores
    nb = inh_idx[cand]
    ok = inh_valid[cand] & np.isin(nb, cand)
    rows = np.nonzero(ok)
    j = nb[rows]
    dst = gate[cand[rows[0]]]
    remote = gate[j] != dst
    j, dst = j[remote], dst[remote]
    n_cores = ctx.n_cores
    if j.size == 0:
        ctx.phase("inhibit", compute={"neuron_op": compute})
        return
    key, uses = np.unique(j * n_cores + dst, return_counts=True)
    src = gate[key // n_cores]
    ctx.phase(
        "inhibit",
        compute={"neuron_op": compute},
        src=src,
        dst=key % n_cores,
        packets=1,
        rx_ops=uses,
    )


def exchange_partials(ctx: nm.StepContext, layout: Layout, cand: np.ndarray) -> None:
    """Split nodes: every candidate's state slices send 3 partials (|h~|^2, sum and sum of
    squares of h~ + h_prev) to its gate slice."""
    if layout.split == 1 or cand.size == 0:
        return
    sc, gs = layout.slice_cores, layout.split - 1
    s = sc[cand][:, :gs].ravel()
    d = np.repeat(sc[cand, gs], gs)
    keep = layout.state_sizes[np.tile(np.arange(gs), cand.size)] > 0
    ctx.phase("exchange", src=s[keep], dst=d[keep], packets=3, rx_ops=3)


def exchange_back(ctx: nm.StepContext, layout: Layout, win: np.ndarray) -> None:
    """Split nodes: each winner's gate slice returns alpha, the mean and 1/std to its state
    slices (3 values each)."""
    if layout.split == 1 or win.size == 0:
        return
    sc, gs = layout.slice_cores, layout.split - 1
    keep = layout.state_sizes[np.tile(np.arange(gs), win.size)] > 0
    s = np.repeat(sc[win, gs], gs)
    d = sc[win][:, :gs].ravel()
    ctx.phase("exchange", src=s[keep], dst=d[keep], packets=3)


def exchange_gather(ctx: nm.StepContext, layout: Layout, nodes: np.ndarray) -> None:
    """Split nodes: the all-gather of h among an emitting node's state slices (slice a sends
    its |state_a| values to every other state slice) before the W_h projection."""
    if layout.split == 1 or nodes.size == 0:
        return
    sc, sizes = layout.slice_cores, layout.state_sizes
    has = np.nonzero(sizes > 0)[0]
    src, dst, pk = [], [], []
    for a in has:
        for b in has:
            if a != b:
                src.append(sc[nodes, a])
                dst.append(sc[nodes, b])
                pk.append(np.full(nodes.size, sizes[a]))
    if src:
        ctx.phase(
            "exchange",
            src=np.concatenate(src),
            dst=np.concatenate(dst),
            packets=np.concatenate(pk),
        )


def slice_mac_counts(layout: Layout, nodes: np.ndarray, per_value: int, n_cores: int) -> np.ndarray:
    """Per-core counts of ``per_value`` operations for each state value of ``nodes`` held on
    that core (slice s of a node holds |state_s| values)."""
    if nodes.size == 0:
        return np.zeros(n_cores, dtype=np.int64)
    sizes = layout.state_sizes
    cores = layout.slice_cores[nodes].ravel()
    w = np.tile(sizes, nodes.size) * per_value
    return per_core(n_cores, cores, w)
