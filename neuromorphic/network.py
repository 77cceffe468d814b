"""The generic network the simulator runs: neuron groups, placement, a sparse synapse list.

Neurons have global indices ``0 .. N-1``; group ``g`` owns the contiguous range
``[offset_g, offset_g + n_g)``. Each neuron sits on one global core (``placement``). Synapses
are a CSR matrix by source neuron (``indptr``, ``dst``, ``weight``), so that an event from
neuron ``i`` fans out to ``dst[indptr[i]:indptr[i+1]]`` in one vectorised gather.

Routing follows Loihi's axon model: an event from neuron ``i`` is one packet per distinct
destination core of its synapses (a fan-out axon); the destination core expands it into its
synaptic operations. The per-source list of destination cores and the synapses each packet
reaches are precomputed (``route_*``).

NeuroBench layers: each synapse belongs to one layer (a projection with ``n_in x n_out`` dense
weights and a set of source neurons whose outputs are the layer's input vector). By default a
layer is a pair (source group, destination group); a builder that knows its network's real
projections declares them (:class:`Layer`, ``Network(..., layers=..., synapse_layer=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import NetworkError
from .neurons import NeuronModel

__all__ = ["NeuronGroup", "SynapseList", "Network", "Layer", "sorted_unique"]


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int array (sort-based; faster than hash-based
    ``np.unique`` for the large integer keys used here)."""
    a = np.sort(np.asarray(a), kind="stable")
    if a.size == 0:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


@dataclass
class NeuronGroup:
    """``n`` neurons sharing one model, with a placement neuron -> global core id.

    Parameters
    ----------
    name : str
    n : int
    model : NeuronModel
    placement : array_like of int, shape (n,)
        Global core of each neuron (see :class:`~rsgn.neuromorphic.topology.Topology`).
    """

    name: str
    n: int
    model: NeuronModel
    placement: np.ndarray

    def __post_init__(self) -> None:
        self.n = int(self.n)
        p = np.asarray(self.placement)
        if p.shape != (self.n,):
            raise NetworkError(f"group '{self.name}': placement shape {p.shape} != ({self.n},)")
        if p.size and (not np.issubdtype(p.dtype, np.integer) or p.min() < 0):
            raise NetworkError(f"group '{self.name}': placement must be non-negative integers")
        self.placement = p.astype(np.int64)


class SynapseList:
    """Sparse synapses in CSR form by source neuron.

    Attributes
    ----------
    n_neurons, nnz : int
    indptr : int64 array (n_neurons + 1,)
    src, dst : int64 arrays (nnz,)
        Sorted by ``(src, dst)``; ``src`` is the expanded row index.
    weight : array (nnz,)
        float64, or int64 when built from integer weights (fixed-point networks).
    """

    def __init__(
        self, indptr: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_neurons: int
    ) -> None:
        self.n_neurons = int(n_neurons)
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.dst = np.asarray(dst, dtype=np.int64)
        self.weight = np.asarray(weight)
        self.nnz = int(self.dst.size)
        self.src = np.repeat(np.arange(self.n_neurons, dtype=np.int64), np.diff(self.indptr))

    @classmethod
    def from_arrays(
        cls, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_neurons: int
    ) -> SynapseList:
        """Build from COO arrays; rejects out-of-range indices, NaN weights and duplicates."""
        src = np.asarray(src)
        dst = np.asarray(dst)
        weight = np.asarray(weight)
        if not (src.shape == dst.shape == weight.shape) or src.ndim != 1:
            raise NetworkError(
                f"synapse arrays must be 1-D of equal length, got {src.shape}, {dst.shape}, "
                f"{weight.shape}"
            )
        for nm, a in (("src", src), ("dst", dst)):
            if a.size and not np.issubdtype(a.dtype, np.integer):
                raise NetworkError(f"synapse {nm} indices must be integers, got {a.dtype}")
            if a.size and (a.min() < 0 or a.max() >= n_neurons):
                raise NetworkError(f"synapse {nm} index out of range [0, {n_neurons})")
        if np.issubdtype(weight.dtype, np.integer):
            weight = weight.astype(np.int64)
        else:
            weight = weight.astype(np.float64)
            if not np.all(np.isfinite(weight)):
                raise NetworkError("synapse weights contain NaN or inf")
        src = src.astype(np.int64)
        dst = dst.astype(np.int64)
        order = np.argsort(src * int(n_neurons) + dst, kind="stable")
        src, dst, weight = src[order], dst[order], weight[order]
        if src.size > 1:
            dup = (src[1:] == src[:-1]) & (dst[1:] == dst[:-1])
            if dup.any():
                k = int(np.argmax(dup))
                raise NetworkError(f"duplicate synapse {int(src[k])} -> {int(dst[k])}")
        indptr = np.zeros(n_neurons + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n_neurons), out=indptr[1:])
        return cls(indptr, dst, weight, n_neurons)

    @classmethod
    def from_dense(cls, w: np.ndarray) -> SynapseList:
        """Synapses for the non-zero entries of a dense ``(N, N)`` matrix ``w[src, dst]``."""
        w = np.asarray(w)
        s, d = np.nonzero(w)
        return cls.from_arrays(s, d, w[s, d], w.shape[0])

    def fanout(self) -> np.ndarray:
        """Synapses per source neuron."""
        return np.diff(self.indptr)

    def to_dense(self) -> np.ndarray:
        """Dense ``(N, N)`` matrix ``w[src, dst]`` (for tests and small networks)."""
        out = np.zeros((self.n_neurons, self.n_neurons), dtype=self.weight.dtype)
        out[self.src, self.dst] = self.weight
        return out


@dataclass(frozen=True)
class Layer:
    """One NeuroBench layer: a projection with ``n_in x n_out`` dense weights whose input vector
    is the output of the neurons ``sources`` (global indices)."""

    name: str
    n_in: int
    n_out: int
    sources: np.ndarray


class Network:
    """Neuron groups plus synapses, with the derived per-synapse and per-route arrays.

    Parameters
    ----------
    groups : sequence of NeuronGroup
        Concatenated in order into global neuron indices.
    synapses : SynapseList
        Over the global indices; ``synapses.n_neurons`` must equal the total group size.
    layers : sequence of Layer, optional
        NeuroBench layers (module docstring); default: one per connected group pair.
    synapse_layer : int array (nnz,), optional
        Layer of each synapse (in ``synapses`` order); required with ``layers``.
    units : int, optional
        Compartments per update unit: neurons ``u * units .. (u + 1) * units - 1`` update
        together (a multi-compartment neuron): if one of them updates, all do (default 1).

    Attributes
    ----------
    n_neurons : int
    offsets : int64 array (n_groups + 1,)
    group_of : int64 array (N,)  group index of each neuron
    placement : int64 array (N,)  global core of each neuron
    syn_dst_core : int64 array (nnz,)  core of each synapse's destination neuron
    route_indptr, route_core : CSR of the distinct destination cores of each source neuron
    route_nsyn : int64 array (routes,)  synapses each route's packet reaches on its core
    layers : list[Layer] ;  synapse_layer : int64 array (nnz,)
    """

    def __init__(
        self,
        groups: Sequence[NeuronGroup],
        synapses: SynapseList,
        *,
        layers: Sequence[Layer] | None = None,
        synapse_layer: np.ndarray | None = None,
        units: int = 1,
    ) -> None:
        if not groups:
            raise NetworkError("a network needs at least one neuron group")
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise NetworkError(f"duplicate group names in {names}")
        self.groups = list(groups)
        sizes = np.array([g.n for g in groups], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_neurons = int(self.offsets[-1])
        if synapses.n_neurons != self.n_neurons:
            raise NetworkError(
                f"synapses cover {synapses.n_neurons} neurons but groups hold {self.n_neurons}"
            )
        self.synapses = synapses
        self.group_of = np.repeat(np.arange(len(groups), dtype=np.int64), sizes)
        self.placement = (
            np.concatenate([g.placement for g in groups]).astype(np.int64)
            if self.n_neurons
            else np.zeros(0, dtype=np.int64)
        )
        self.syn_dst_core = self.placement[synapses.dst]
        # Distinct (src, dst core) routes, sorted by src then core, and their synapse counts.
        ncore = int(self.placement.max(initial=0)) + 1
        key = synapses.src * ncore + self.syn_dst_core
        uniq, nsyn = np.unique(key, return_counts=True)
        rsrc = uniq // ncore
        self.route_core = uniq % ncore
        self.route_src = rsrc
        self.route_nsyn = nsyn.astype(np.int64)
        self.route_indptr = np.zeros(self.n_neurons + 1, dtype=np.int64)
        np.cumsum(np.bincount(rsrc, minlength=self.n_neurons), out=self.route_indptr[1:])
        self.graded = np.array([g.model.graded for g in groups], dtype=bool)
        self.units = int(units)
        if self.units < 1 or self.n_neurons % self.units:
            raise NetworkError(f"units must divide the {self.n_neurons} neurons, got {units}")
        if layers is None:
            self.layers, self.synapse_layer = self._group_layers()
        else:
            sl = np.asarray(synapse_layer, dtype=np.int64)
            if sl.shape != (synapses.nnz,) or (
                sl.size and (sl.min() < 0 or sl.max() >= len(layers))
            ):
                raise NetworkError(
                    f"synapse_layer must give a layer in [0, {len(layers)}) for each of the "
                    f"{synapses.nnz} synapses"
                )
            self.layers, self.synapse_layer = list(layers), sl

    def group(self, name: str) -> slice:
        """Global index range of the named group."""
        for k, g in enumerate(self.groups):
            if g.name == name:
                return slice(int(self.offsets[k]), int(self.offsets[k + 1]))
        raise NetworkError(
            f"unknown group {name!r}; groups: {', '.join(g.name for g in self.groups)}"
        )

    @property
    def cores_used(self) -> np.ndarray:
        """Sorted distinct cores holding at least one neuron."""
        return np.unique(self.placement)

    def _group_layers(self) -> tuple[list[Layer], np.ndarray]:
        """One layer per connected (source group, destination group) pair."""
        s = self.synapses
        ng = len(self.groups)
        pair = self.group_of[s.src] * ng + self.group_of[s.dst]
        pairs, inv = np.unique(pair, return_inverse=True)
        layers = []
        for p in pairs.tolist():
            a, b = divmod(p, ng)
            ga, gb = self.groups[a], self.groups[b]
            src = np.arange(self.offsets[a], self.offsets[a + 1], dtype=np.int64)
            layers.append(Layer(f"{ga.name}->{gb.name}", ga.n, gb.n, src))
        return layers, inv.astype(np.int64).reshape(-1)

    def projections(self) -> list[tuple[int, int, int, int]]:
        """``(src group, dst group, synapses, non-zero-weight synapses)`` per connected pair.

        Each pair is one NeuroBench "layer" with ``n_src * n_dst`` dense weights.
        """
        s = self.synapses
        gs, gd = self.group_of[s.src], self.group_of[s.dst]
        ng = len(self.groups)
        pair = gs * ng + gd
        cnt = np.bincount(pair, minlength=ng * ng)
        nz = np.bincount(pair, weights=(s.weight != 0).astype(np.float64), minlength=ng * ng)
        out = []
        for p in np.nonzero(cnt)[0]:
            out.append((int(p // ng), int(p % ng), int(cnt[p]), int(round(nz[p]))))
        return out
