r"""Mapping an RSGN spec onto the chip: compartments, synapses, placement, node split.

Everything here is read from the :class:`~rsgn.spec.ModelSpec` and its graph (built once at
``prepare``); capacity failures are one-line RsgnErrors naming the model and the preset.

Compartments
    Node ``i`` is ``c = d + 1`` simulator neurons on its core(s): ``d`` state compartments
    ``i c + k`` (k < d, holding h_ik) and one gate ``i c + d`` (holding alpha_i).

Synapses (global compartment indices; ``E d`` in all): state ``(j, k)`` -> state ``(i, k)``
    with weight ``w_ji``, the message along in-edge j -> i on channel k. The gate holds alpha_i
    and sends nothing. A node's d + 1 compartments are one update unit of the simulator
    (``units = d + 1``): a node reached on any channel updates as a whole, and an active node
    updates whether or not it was reached (the chip program's ``needs_update``), so the
    ``touched_only`` policy updates exactly the candidates (nodes in A or reached from A).

NeuroBench layers: channel k is one layer (``N x N`` dense weights, the messages of channel k),
so Dense = d N^2 per step and the connection sparsity is that of the in-edge graph.

Placement by hyperbolic locality
    Nodes are ordered along a Morton (Z) curve over their tangent coordinates logmap0(p_i) and
    dealt to cores ``nodes_per_core`` at a time in the mesh's Morton core order
    (:func:`rsgn.neuromorphic.core_order`), so geometric neighbours share a core or a nearby
    tile. By default a core holds one hyperbolic neighbourhood (K in-edge slots) or an even
    share of one chip, whichever is larger, capped by the compartment budget and halved until
    every core limit (fan-in / fan-out axons, synaptic memory) holds; chips are added as needed.

Split nodes
    A hub with out-degree o needs o (d + 1) fan-out axons, and d + 1 compartments may exceed
    ``max_neurons``. Messages are channel-wise (state k feeds state k only), so a node's
    compartments split into S contiguous slices (the gate in the last) on S consecutive cores of
    the Morton order, slice s of every node of a group on core s: axons per node and core fall
    by S. When whole nodes do not fit, S = 2, 4, 8, ... (then d + 1) is tried; the first that
    fits wins (``node_split`` fixes S). The cross-slice terms of the node program then cost an
    exchange (:mod:`.traffic`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rsgn import geometry
from rsgn import neuromorphic as nm
from rsgn.backends.neuromorphic.node_program import NodeParams
from rsgn.errors import RsgnError
from rsgn.spec import ModelSpec
from rsgn.state import Graph

GROUP = "rsgn"
"""Name of the simulator neuron group holding every compartment."""


def node_params(spec: ModelSpec, graph: Graph) -> NodeParams:
    """The node program's constants from the spec (float64 copies)."""
    w, hp = spec.weights, spec.hyper

    def f64(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().double().numpy()

    return NodeParams(
        w_h=f64(w.h_w),
        b_h=f64(w.h_b),
        theta=f64(w.theta),
        ln_w=f64(w.ln_w),
        ln_b=f64(w.ln_b),
        inh_idx=graph.inh_idx.cpu().numpy().astype(np.int64),
        inh_valid=graph.inh_valid.cpu().numpy().astype(bool),
        gamma=float(hp.gamma),
        temperature=float(hp.temperature),
        inhibition=float(hp.inhibition_strength),
        cap=int(hp.cap),
        eps=float(hp.eps_active),
        method=hp.selection,
    )


# ------------------------------------------------------------------------------ synapses
@dataclass(frozen=True)
class Synapses:
    """The message synapses (module docstring) as COO arrays with weights ``msg_w``."""

    src: np.ndarray
    dst: np.ndarray
    msg_w: np.ndarray
    n_nodes: int
    d: int
    slots: int
    """In-edge slots K per node (one hyperbolic neighbourhood)."""
    max_fanin: int
    """Largest number of live in-edges of a node."""
    max_fanout: int
    hub: int
    """The node with the most out-edges."""

    @property
    def n_msg(self) -> int:
        return int(self.msg_w.size)

    @property
    def c(self) -> int:
        return self.d + 1

    @property
    def n_neurons(self) -> int:
        return self.n_nodes * self.c

    def weights(self, msg: np.ndarray) -> np.ndarray:
        """The weight vector with message weights ``msg`` (float, or integers)."""
        return np.asarray(msg)

    def layers(self) -> tuple[list[nm.Layer], np.ndarray]:
        """NeuroBench layers (one per channel) and each synapse's layer, in
        :class:`rsgn.neuromorphic.SynapseList` order (sorted by source, then destination)."""
        c, n = self.c, self.n_nodes
        nodes = np.arange(n, dtype=np.int64)
        layers = [nm.Layer(f"message_{k}", n, n, nodes * c + k) for k in range(self.d)]
        order = np.argsort(self.src * self.n_neurons + self.dst, kind="stable")
        return layers, (self.src[order] % c).astype(np.int64)


def build_synapses(graph: Graph, d: int) -> Synapses:
    """The message synapses of ``graph``'s live in-edges."""
    n, c = graph.n_nodes, d + 1
    mask = graph.in_mask.cpu().numpy()
    dst_node, slot = np.nonzero(mask)
    src_node = graph.in_idx.cpu().numpy()[dst_node, slot].astype(np.int64)
    w_edge = graph.w.detach().cpu().double().numpy()[dst_node, slot]
    k = np.arange(d, dtype=np.int64)
    out_deg = np.bincount(src_node, minlength=n)
    return Synapses(
        src=(src_node[:, None] * c + k).ravel(),
        dst=(dst_node[:, None] * c + k).ravel(),
        msg_w=np.repeat(w_edge, d),
        n_nodes=n,
        d=d,
        slots=int(mask.shape[1]),
        max_fanin=int(mask.sum(1).max(initial=0)),
        max_fanout=int(out_deg.max(initial=0)),
        hub=int(out_deg.argmax()) if n else 0,
    )


# ------------------------------------------------------------------------------ placement
@dataclass(frozen=True)
class Layout:
    """Where every compartment sits."""

    topology: nm.Topology
    split: int
    """Cores each node is split over (1: whole nodes)."""
    nodes_per_core: int
    slice_cores: np.ndarray
    """[N, split] core of each slice of each node (the gate in the last slice)."""
    placement: np.ndarray
    """[N (d + 1)] core of each compartment."""
    state_sizes: np.ndarray
    """[split] state compartments per slice."""
    root: int
    """The core that gathers the k-winners reductions: the used core nearest the median tile."""

    @property
    def gate_cores(self) -> np.ndarray:
        return self.slice_cores[:, -1]

    @property
    def cores_used(self) -> int:
        return int(np.unique(self.placement).size)


def morton_rank(coords: np.ndarray) -> np.ndarray:
    """Rank of each point along a Morton (Z) curve over its bounding box (any dimension)."""
    n, dim = coords.shape
    bits = max(1, min(16, 63 // dim))
    lo, hi = coords.min(0), coords.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    g = np.floor((coords - lo) / span * ((1 << bits) - 1)).astype(np.uint64)
    key = np.zeros(n, dtype=np.uint64)
    for b in range(bits):
        for a in range(dim):
            bit = (g[:, a] >> np.uint64(b)) & np.uint64(1)
            key |= bit << np.uint64(b * dim + a)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), key))] = np.arange(n)
    return rank


def tangent_coords(graph: Graph) -> np.ndarray:
    """logmap0(p_i) [N, D]: the coordinates placement orders nodes by."""
    return geometry.logmap0(graph.x.detach().double()).cpu().numpy()


def node_cores(coords: np.ndarray, topo: nm.Topology, per: int, split: int) -> np.ndarray:
    """Cores of each node's slices, [N, split]: nodes in Morton order of ``coords`` dealt
    ``per`` at a time to groups of ``split`` consecutive cores of the mesh's Morton core order;
    slice s of a group's nodes shares core s of the group."""
    group = morton_rank(coords) // per
    need = (int(group.max(initial=0)) + 1) * split
    if need > topo.n_cores:
        raise nm.CapacityError(
            f"{coords.shape[0]} nodes at {per} per core group of {split} core(s) need {need} "
            f"cores, but the system has {topo.n_cores} ({topo.n_chips} chip(s))"
        )
    return nm.core_order(topo)[group[:, None] * split + np.arange(split)]


def slices(c: int, split: int) -> np.ndarray:
    """Slice of each compartment k = 0 .. c-1 (contiguous, sizes differ by at most one; the
    gate k = c-1 is in the last slice)."""
    return (np.arange(c, dtype=np.int64) * split) // c


def split_options(node_split: int | None, c: int) -> list[int]:
    """Node splits to try: the user's, else 1, 2, 4, ... and finally c."""
    if node_split is not None:
        return [node_split]
    out = [1]
    while out[-1] * 2 < c:
        out.append(out[-1] * 2)
    return out + [c]


def root_core(topo: nm.Topology, used: np.ndarray) -> int:
    """The used core nearest (Manhattan, in global tile coordinates) to the median tile."""
    x, y = topo.core_x[used], topo.core_y[used]
    dist = np.abs(x - np.median(x)) + np.abs(y - np.median(y))
    return int(used[int(np.argmin(dist))])


def _capacity_hint(reason: str, syn: Synapses, split: int) -> str:
    """Why one node per core can still overflow: each of a node's c compartments sends one axon
    to the core of every out-neighbour and receives one from every compartment of every
    in-neighbour; splitting over ``split`` cores divides both by about ``split``."""
    per = -(-syn.c // split)
    what = f"{per} compartments" + (" per slice" if split > 1 else "")
    more = (
        "; node_split > 1 spreads a node over several cores"
        if split == 1
        else f" at node_split {split}"
    )
    if "fan-out axons" in reason:
        return (
            f" (node {syn.hub} has {syn.max_fanout} out-neighbours: x {what} = "
            f"{syn.max_fanout * per} axons{more})"
        )
    if "fan-in axons" in reason:
        return (
            f" (up to {syn.max_fanin} in-neighbours x {what} = {syn.max_fanin * per} axons into "
            f"one core{more})"
        )
    return ""


def network(
    syn: Synapses, synapse_list: nm.SynapseList, model: nm.NeuronModel, placement: np.ndarray
) -> nm.Network:
    """The simulator network: every compartment runs ``model``; nodes are update units of
    d + 1 compartments; one NeuroBench layer per channel."""
    layers, layer_of = syn.layers()
    return nm.Network(
        [nm.NeuronGroup(GROUP, syn.n_neurons, model, placement)],
        synapse_list,
        layers=layers,
        synapse_layer=layer_of,
        units=syn.c,
    )


def place(
    coords: np.ndarray,
    syn: Synapses,
    synapse_list: nm.SynapseList,
    model_for: Callable[[Layout], nm.NeuronModel],
    profile: nm.HardwareProfile,
    *,
    nodes_per_core: int | None,
    node_split: int | None,
    chips: int | None,
) -> tuple[Layout, nm.Network]:
    """Place the compartments: for each node split (:func:`split_options`) halve nodes per core
    until the core limits hold; the first split that fits wins. Returns the layout and the
    network (``model_for(layout)`` for every compartment). Capacity failures are RsgnErrors
    naming the model and the preset."""
    core = profile.chip.core
    n, c, d = syn.n_nodes, syn.c, syn.d
    if node_split is not None and node_split > c:
        raise RsgnError(
            f"node_split {node_split} > {c} compartments per node (d_hidden {d} + gate)"
        )
    size = (
        f"RSGN with {n} nodes x {c} compartments ({syn.n_neurons} neurons, {syn.src.size} "
        f"synapses, up to {syn.max_fanin} in-edges per node)"
    )
    spread = max(-(-n // profile.chip.cores_per_chip), syn.slots)
    failure = ""
    for split in split_options(node_split, c):
        sl = slices(c, split)
        per_max = core.max_neurons // int(np.bincount(sl).max())
        at = f" (at node_split {split})" if split > 1 else ""
        if per_max < 1:
            failure = (
                f"{size} does not fit preset {profile.name}: one node needs {c} compartments "
                f"but a core holds max_neurons {core.max_neurons}{at}"
            )
            continue
        per = min(nodes_per_core or min(per_max, spread), n)
        if per > per_max:
            failure = (
                f"{size} does not fit preset {profile.name}: nodes_per_core {per} x "
                f"{-(-c // split)} compartments > max_neurons {core.max_neurons}"
            )
            continue
        while True:
            if chips is not None:
                topo = nm.Topology.for_cores(profile, chips * profile.chip.cores_per_chip)
            else:
                topo = nm.Topology.for_cores(profile, -(-n // per) * split)
            try:
                cores = node_cores(coords, topo, per, split)
                placement = cores[:, sl].ravel()
                layout = Layout(
                    topology=topo,
                    split=split,
                    nodes_per_core=per,
                    slice_cores=cores,
                    placement=placement,
                    state_sizes=np.bincount(sl[:d], minlength=split),
                    root=root_core(topo, np.unique(placement)),
                )
                net = network(syn, synapse_list, model_for(layout), placement)
                nm.check_capacity(net, topo)
            except nm.CapacityError as exc:
                if nodes_per_core is None and per > 1:
                    per = max(1, per // 2)
                    continue
                failure = (
                    f"{size} does not fit preset {profile.name} at {per} nodes per core: {exc}"
                    + _capacity_hint(str(exc), syn, split)
                )
                break
            except nm.NeuromorphicError as exc:
                raise RsgnError(f"preset {profile.name}: {exc}") from None
            return layout, net
    raise RsgnError(failure)
