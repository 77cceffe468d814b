"""The data that flows between the RSGN ops: the sparse graph, the compact active state and
the candidates of one propagation step. Plain containers of tensors, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Graph:
    """Sparse in-edge graph in ELL form (``K`` slots per node) plus derived structures.

    Attributes
    ----------
    x, a : node positions ``[N, D]`` and conformal factors ``1 - |x|^2`` ``[N]``.
    in_idx, in_mask : source node of each in-edge slot ``[N, K]`` and whether it is live.
    w : edge weights ``[N, K]`` (0 on dead slots); ``w[i, s]`` is the weight j -> i.
    out_ptr, out_edge : CSR over sources: the flat edge ids ``i*K + s`` whose source is j are
        ``out_edge[out_ptr[j]:out_ptr[j+1]]``.
    inh_idx, inh_valid : the inhibition neighbourhood R(i) (in-neighbours within the
        inhibition radius) packed into ``[N, K_inh]`` slots, K_inh = max |R(i)|.
    """

    x: torch.Tensor
    a: torch.Tensor
    in_idx: torch.Tensor
    in_mask: torch.Tensor
    w: torch.Tensor
    out_ptr: torch.Tensor
    out_edge: torch.Tensor
    inh_idx: torch.Tensor
    inh_valid: torch.Tensor

    @property
    def n_nodes(self) -> int:
        return self.in_idx.shape[0]

    @property
    def n_edges(self) -> int:
        return int(self.out_edge.numel())


@dataclass(frozen=True)
class ActiveState:
    """The active set of each sample, compact: only active nodes hold state.

    ``ids[b, s]`` is the node in slot ``s`` of sample ``b``; ``valid`` marks real slots
    (padding slots have alpha 0 and h 0). ``token`` (ignition only) is the index of the spark
    that ignited each node.
    """

    ids: torch.Tensor
    valid: torch.Tensor
    alpha: torch.Tensor
    h: torch.Tensor | None = None
    token: torch.Tensor | None = None


@dataclass(frozen=True)
class Candidates:
    """Nodes reached by one propagation step, flattened over the batch (``M`` rows), sorted by
    sample and then by node id (the order ``select`` breaks ties in)."""

    batch: torch.Tensor
    node: torch.Tensor
    htilde: torch.Tensor
    alpha: torch.Tensor
    prev_row: torch.Tensor
    """Row of this (sample, node) in the previous state's flattened slots, or -1."""
    n_batch: int
