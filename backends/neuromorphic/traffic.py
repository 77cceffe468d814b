r"""The node program's work beyond the simulator's own events: counted and timed per inference.

The simulator counts and times the message traffic (packets, hops, synaptic ops, neuron
updates, barriers). Three parts of the node program need more than one compartment's data
and are modelled here from the per-step :class:`~.chip_node.InferenceLog`, serialised after the
step's core phase (an upper bound on their latency):

projection
    An emitting node computes g = a W_h h: d^2 MACs, one synaptic op each (a dense on-core
    projection); time max_core(sum of its nodes' MACs) t_synop per emission (slice s of a
    split node computes its |state_s| outputs from all d inputs: d |state_s| MACs).

select (the k-winners, on the chip)
    Every core holding a candidate's gate counts its candidates against a trial threshold
    (one op each) and sends its count to the root core (one packet per value), which adds the
    counts (one op per packet) and broadcasts the next threshold (one packet per core); the
    rounds are those of :func:`~.node_program.k_winners` (``stat``: one round of three values).
    Time per round = network time up + network time down + (the most candidates on one core +
    the packets into the root) t_synop.

exchange (split nodes only)
    1. every candidate's non-gate slices send their partials of |h~|^2, sum(h~ + h_prev) and
       sum((h~ + h_prev)^2) to the gate slice (3 values);
    2. the gate slice of every winner returns the score and the LayerNorm mean and 1/std to
       the other slices (3 values each);
    3. the state slices of every winner all-gather h for the W_h projection (slice s sends its
       |state_s| values to each other state slice).
    Time per round = network time + the most values one core receives x t_synop.

Every packet carries one 32-bit value, is XY-routed (:meth:`Topology.hops`) and timed by
:func:`rsgn.neuromorphic.analytic_network_time_ps`. Counts per traffic kind: ``packets``,
``hops_ew``, ``hops_ns``, ``chip_hops`` and ``ops`` (values received and accumulated, or
compared); the cost model charges them at the preset's packet, hop and synaptic-op energies.
Inhibition reads neighbours' activations; R(i) are geometric neighbours, mostly co-located,
so that exchange is part of the neuron update (not extra packets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.backends.neuromorphic.chip_node import InferenceLog
from rsgn.backends.neuromorphic.mapping import Layout

COUNTS = ("packets", "hops_ew", "hops_ns", "chip_hops", "ops")


@dataclass
class Traffic:
    """Counted events (:data:`COUNTS`) and time of one kind of traffic."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    time_ps: int = 0

    def add_packets(self, topo: nm.Topology, src: np.ndarray, dst: np.ndarray, times: int = 1):
        """``times`` repetitions of the packets ``src -> dst``: counts only (no time)."""
        h = topo.hops(src, dst)
        self.counts["packets"] += int(src.size) * times
        self.counts["hops_ew"] += int(h.ew.sum()) * times
        self.counts["hops_ns"] += int(h.ns.sum()) * times
        self.counts["chip_hops"] += int(h.chip.sum()) * times


@dataclass
class InferenceTraffic:
    """What the node program's non-local work cost in one inference."""

    projection_macs: int = 0
    projection_ps: int = 0
    select: Traffic = field(default_factory=Traffic)
    exchange: Traffic = field(default_factory=Traffic)

    @property
    def time_ps(self) -> int:
        return self.projection_ps + self.select.time_ps + self.exchange.time_ps


def projection(layout: Layout, d: int, nodes: np.ndarray, synop_ps: int) -> tuple[int, int]:
    """(MACs, time ps) of the payload projection of the emitting ``nodes``."""
    if nodes.size == 0:
        return 0, 0
    slice_macs = d * layout.state_sizes
    per_core = np.bincount(
        layout.slice_cores[nodes].ravel(), weights=np.tile(slice_macs, nodes.size)
    )
    return int(nodes.size) * d * d, int(per_core.max()) * synop_ps


def selection(layout: Layout, cand: np.ndarray, rounds: int, values: int, out: Traffic) -> None:
    """Add the k-winners reductions of one step (module docstring) to ``out``."""
    if cand.size == 0:
        return
    topo, root = layout.topology, layout.root
    cores, per_core = np.unique(layout.gate_cores[cand], return_counts=True)
    others = cores[cores != root]
    up_src = np.repeat(others, values)
    up_dst = np.full(up_src.size, root)
    down_dst = others
    down_src = np.full(down_dst.size, root)
    out.add_packets(topo, up_src, up_dst, rounds)
    out.add_packets(topo, down_src, down_dst, rounds)
    out.counts["ops"] += (int(cand.size) + int(up_src.size)) * rounds
    t_up, _ = nm.analytic_network_time_ps(topo, up_src, up_dst)
    t_down, _ = nm.analytic_network_time_ps(topo, down_src, down_dst)
    busy = (int(per_core.max()) + int(up_src.size)) * topo.profile.timing.synop_ps
    out.time_ps += (t_up + t_down + busy) * rounds


def exchange(layout: Layout, cand: np.ndarray, win: np.ndarray, out: Traffic) -> None:
    """Add the split-node exchange of one step (module docstring) to ``out``; none when nodes
    are whole."""
    split = layout.split
    if split == 1:
        return
    sc, gs, sizes = layout.slice_cores, split - 1, layout.state_sizes
    has_state = np.nonzero(sizes > 0)[0]
    rounds = []
    if cand.size:  # 1. partials to the gate slice
        s = sc[cand][:, :gs]
        rounds.append((np.repeat(s.ravel(), 3), np.repeat(np.repeat(sc[cand, gs], gs), 3)))
    if win.size:
        g = sc[win, gs]  # 2. score, mean, rstd back to the other slices
        rounds.append((np.repeat(np.repeat(g, gs), 3), np.repeat(sc[win][:, :gs].ravel(), 3)))
        srcs, dsts = [], []  # 3. all-gather of h among the state slices
        for a in has_state:
            for b in has_state:
                if a != b:
                    srcs.append(np.repeat(sc[win, a], sizes[a]))
                    dsts.append(np.repeat(sc[win, b], sizes[a]))
        if srcs:
            rounds.append((np.concatenate(srcs), np.concatenate(dsts)))
    topo = layout.topology
    for src, dst in rounds:
        out.add_packets(topo, src, dst)
        out.counts["ops"] += int(src.size)
        t_net, _ = nm.analytic_network_time_ps(topo, src, dst)
        out.time_ps += int(t_net) + int(np.bincount(dst).max()) * topo.profile.timing.synop_ps


def account(layout: Layout, d: int, log: InferenceLog) -> InferenceTraffic:
    """The projection, selection and exchange work of one inference from its log."""
    out = InferenceTraffic()
    synop_ps = layout.topology.profile.timing.synop_ps
    for nodes in log.emitted:
        macs, ps = projection(layout, d, nodes, synop_ps)
        out.projection_macs += macs
        out.projection_ps += ps
    for s in log.steps.values():
        selection(layout, s.candidates, s.rounds, s.values, out.select)
        exchange(layout, s.candidates, s.winners, out.exchange)
    return out
