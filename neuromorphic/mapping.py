"""Placement helpers and capacity checks for mapping a network onto cores.

Capacity of core ``c`` (limits from :class:`~rsgn.neuromorphic.profile.CoreSpec`):

- neurons:      ``#{i : placement[i] = c} <= max_neurons``
- fan-in axons: ``#{distinct src : some synapse src -> dst with placement[dst] = c}
  <= max_axons_in``
- fan-out axons: ``#{distinct (src, core(dst)) : placement[src] = c} <= max_axons_out``
- synaptic memory: ``#{synapses with placement[dst] = c} * synapse_bits <= 8 * syn_mem_bytes``

Placement helpers fill cores in an order that keeps neighbours close: tiles in Morton
(Z-curve) order, cores within a tile consecutively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CapacityError, NetworkError
from .network import Network, sorted_unique
from .topology import Topology

__all__ = [
    "CoreUsage",
    "core_usage",
    "check_capacity",
    "core_order",
    "place_sequential",
    "place_by_coordinates",
]


@dataclass(frozen=True)
class CoreUsage:
    """Per-core resource use (int64 arrays of length ``n_cores``)."""

    neurons: np.ndarray
    axons_in: np.ndarray
    axons_out: np.ndarray
    synapses: np.ndarray
    syn_bits: np.ndarray


def core_usage(network: Network, n_cores: int, synapse_bits: int = 0) -> CoreUsage:
    """Count neurons, fan-in axons, fan-out axons, synapses and synapse bits per core.

    ``n_cores`` must exceed every core id in ``network.placement``.
    """
    s = network.synapses
    neurons = np.bincount(network.placement, minlength=n_cores)
    synapses = np.bincount(network.syn_dst_core, minlength=n_cores)
    n = max(network.n_neurons, 1)
    pair_in = sorted_unique(network.syn_dst_core * n + s.src)
    axons_in = np.bincount(pair_in // n, minlength=n_cores)
    axons_out = np.bincount(network.placement[network.route_src], minlength=n_cores)
    return CoreUsage(neurons, axons_in, axons_out, synapses, synapses * int(synapse_bits))


def check_capacity(network: Network, topology: Topology) -> CoreUsage:
    """Raise :class:`CapacityError` at the first core over a limit; else return the usage.

    The message is one line naming the core, the count and the limit, e.g.
    ``core 3 (chip 0, tile (0, 0)): 1100 neurons > max_neurons 1024 (preset loihi)``.
    """
    if network.n_neurons and int(network.placement.max()) >= topology.n_cores:
        bad = int(np.argmax(network.placement >= topology.n_cores))
        raise CapacityError(
            f"neuron {bad} placed on core {int(network.placement[bad])} but the system has "
            f"{topology.n_cores} cores ({topology.n_chips} chip(s) of {topology.cores_per_chip})"
        )
    spec = topology.profile.chip.core
    u = core_usage(network, topology.n_cores, spec.synapse_bits)
    checks = (
        ("neurons", u.neurons, spec.max_neurons, "max_neurons"),
        ("fan-in axons", u.axons_in, spec.max_axons_in, "max_axons_in"),
        ("fan-out axons", u.axons_out, spec.max_axons_out, "max_axons_out"),
        (
            "synapses",
            u.synapses,
            spec.max_synapses,
            f"synapse capacity (syn_mem_bytes {spec.syn_mem_bytes} x 8 / synapse_bits "
            f"{spec.synapse_bits})",
        ),
    )
    for what, used, limit, lname in checks:
        over = np.nonzero(used > limit)[0]
        if over.size:
            c = int(over[0])
            raise CapacityError(
                f"{topology.describe_core(c)}: {int(used[c])} {what} > {lname} {limit} "
                f"(preset {topology.profile.name})"
            )
    return u


def _morton(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Interleave the bits of non-negative ints ``x`` and ``y`` (Z-order key)."""
    x = np.asarray(x, dtype=np.uint64)
    y = np.asarray(y, dtype=np.uint64)
    key = np.zeros_like(x)
    for b in range(32):
        key |= ((x >> np.uint64(b)) & np.uint64(1)) << np.uint64(2 * b)
        key |= ((y >> np.uint64(b)) & np.uint64(1)) << np.uint64(2 * b + 1)
    return key


def core_order(topology: Topology) -> np.ndarray:
    """Global core ids ordered tile by tile along a Morton curve over the whole mesh."""
    key = _morton(topology.core_x, topology.core_y)
    return np.lexsort((np.arange(topology.n_cores), key)).astype(np.int64)


def place_sequential(
    n: int, topology: Topology, per_core: int | None = None, first: int = 0
) -> np.ndarray:
    """Place neurons ``0..n-1`` in blocks of ``per_core`` on cores in :func:`core_order`.

    ``first`` skips that many cores of the order (to place several groups side by side).
    Raises :class:`CapacityError` if the system runs out of cores.
    """
    per = int(per_core or topology.profile.chip.core.max_neurons)
    if per < 1:
        raise NetworkError(f"per_core must be >= 1, got {per_core}")
    need = -(-int(n) // per)
    order = core_order(topology)
    if first + need > topology.n_cores:
        raise CapacityError(
            f"{n} neurons at {per} per core need {need} cores from core slot {first}, but the "
            f"system has {topology.n_cores} cores ({topology.n_chips} chip(s))"
        )
    return order[first + np.arange(int(n), dtype=np.int64) // per]


def place_by_coordinates(
    coords: np.ndarray, topology: Topology, per_core: int | None = None, first: int = 0
) -> np.ndarray:
    """Locality-preserving placement of neurons with 2-D coordinates.

    Neurons are sorted by the Morton key of their coordinates (quantised to a 2**16 grid over
    their bounding box) and dealt to cores in :func:`core_order`, ``per_core`` at a time, so
    that nearby neurons share a core or a nearby tile.
    """
    c = np.asarray(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2 or not np.all(np.isfinite(c)):
        raise NetworkError(f"coords must be a finite (n, 2) array, got shape {c.shape}")
    lo, hi = c.min(axis=0), c.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    g = np.floor((c - lo) / span * 65535).astype(np.int64)
    key = _morton(g[:, 0], g[:, 1])
    rank = np.empty(len(c), dtype=np.int64)
    rank[np.lexsort((np.arange(len(c)), key))] = np.arange(len(c))
    slots = place_sequential(len(c), topology, per_core, first)
    return slots[rank]
