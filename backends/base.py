"""The backend interface: a small, closed vocabulary of RSGN operations.

The model (``rsgn.model``) is written once against these ops; each target implements them.

==========  ==============================================================  ====================
op          computes                                                        cost (per sample)
==========  ==============================================================  ====================
graph       w_ji = sigmoid(a_ij) exp(-d_H(p_i,p_j)/tau) softplus(l_i-l_j+1)  O(N k (r + D))
            on the k-in-edge topology; out-edge CSR; inhibition masks
ignite      alpha_i(0) = max_t exp(-d_H(s_t, p_i)^2 / (2 sigma^2)),         O(T N D)
            capped to the k_active largest (exact select)
propagate   h~_i = W_h sum_{j in A} w_ji alpha_j h_j + b_h over the nodes    O(|A| (k d + d^2))
            reached from A; alpha_i' = sigmoid((alpha_i + gamma|h~_i| -
            theta_i)/T)
inhibit     alpha_i <- alpha_i / (1 + beta mean_{j in R(i)} alpha_j)         O(|C| k)
select      exact k-winners per sample (sort-free radix select)              O(N)
update      h_i <- LN(h~_i + h_i) alpha_i on the selected nodes              O(|A| d)
step        propagate -> inhibit -> select -> update (composite; fusable)    the sum
readout     logits = W_o sum_{i in A} alpha_i h_i + b_o                       O(|A| d + d C)
==========  ==============================================================  ====================

Around the ops: ``Backend.prepare(model) -> Program``; ``Program(x) -> (logits, Report)``;
``Capabilities`` says what a backend can do and which metrics it measures, models or cannot
report (never a silent zero).
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from rsgn.backends.cost import CostLedger

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.model import RSGN


@dataclass
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


@dataclass
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

    def active_count(self) -> torch.Tensor:
        """Number of active nodes per sample ``[B]``."""
        return self.valid.sum(1)


@dataclass
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


@dataclass
class Capabilities:
    """What a backend can do and how it knows each metric.

    ``metrics`` maps a metric name to ``'measured'``, ``'modelled'`` or ``'n/a: <reason>'``.
    """

    differentiable: bool
    devices: tuple[str, ...]
    metrics: dict[str, str] = field(default_factory=dict)
    notes: str = ""


@dataclass
class Report:
    """Result of running a program on one batch: accuracy-relevant outputs plus the costs."""

    backend: str
    n_samples: int
    active_fraction: float
    active_fraction_per_step: list[float]
    ledger: CostLedger
    latency_s: float | str
    """Measured wall time for the batch (seconds) or 'n/a: reason'."""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ledger"] = self.ledger.to_dict()
        return d


class Program(abc.ABC):
    """A model mapped onto a target. ``program(x) -> (logits, Report)``."""

    backend: Backend

    @abc.abstractmethod
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, Report]:
        """Run a batch ``x`` [B, T, F]; return logits [B, C] and the batch's Report."""


class Backend(abc.ABC):
    """A target that implements the RSGN op vocabulary."""

    name: str = "abstract"

    def __init__(self) -> None:
        self.ledger: CostLedger | None = None

    # --- availability -------------------------------------------------------------------
    @classmethod
    def available(cls) -> tuple[bool, str]:
        """(is this backend usable here?, reason if not)."""
        return True, ""

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this backend supports and how it knows each metric."""

    # --- the op vocabulary ---------------------------------------------------------------
    @abc.abstractmethod
    def graph(
        self,
        x: torch.Tensor,
        a: torch.Tensor,
        u: torch.Tensor,
        v: torch.Tensor,
        level: torch.Tensor,
        hebb: torch.Tensor,
        in_idx: torch.Tensor,
        in_mask: torch.Tensor,
        *,
        tau: float,
        inhibition_radius: float,
    ) -> Graph:
        """Edge weights on the given topology and the derived out-edge / inhibition structures."""

    @abc.abstractmethod
    def ignite(
        self,
        sparks: torch.Tensor,
        spark_a: torch.Tensor,
        graph: Graph,
        *,
        sigma: float,
        eps: float,
        cap: int,
        method: str,
    ) -> ActiveState:
        """Initial activations from the sparks [B, T, D] (max over tokens), capped."""

    def token_distances(
        self, sparks: torch.Tensor, spark_a: torch.Tensor, graph: Graph, ids: torch.Tensor
    ) -> torch.Tensor:
        """d_H(s_t, p_i) from every spark of sample b to each node in ``ids[b]``: [B, W, T]
        (the ``attend`` initial state's weights). This default computes them exactly,
        d = 2 asinh(|s - p| / sqrt(a_s a_p)), charging B W T (D + 1) MACs and one
        transcendental per pair; a target that measures distances overrides it."""
        from rsgn.geometry import dist_from_parts

        p, a = graph.x[ids], graph.a[ids]  # [B, W, D], [B, W]
        d = dist_from_parts(
            sparks.unsqueeze(1), p.unsqueeze(2), spark_a.unsqueeze(1), a.unsqueeze(2)
        )
        pairs = d.numel()
        self.count("mac_fp32", pairs * (sparks.shape[-1] + 1))
        self.count("transcendental_fp32", pairs)
        self.count("sram_word_32b", ids.numel() * (sparks.shape[-1] + 1))
        return d

    @abc.abstractmethod
    def propagate(
        self,
        state: ActiveState,
        graph: Graph,
        w_h: torch.Tensor,
        b_h: torch.Tensor,
        theta: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
    ) -> Candidates:
        """One message-passing step from the active set; candidate activations."""

    @abc.abstractmethod
    def inhibit(self, cand: Candidates, graph: Graph, *, strength: float) -> torch.Tensor:
        """Divisive local inhibition of the candidate activations; returns new alphas [M]."""

    @abc.abstractmethod
    def select(
        self,
        batch: torch.Tensor,
        node: torch.Tensor,
        score: torch.Tensor,
        n_batch: int,
        n_nodes: int,
        *,
        cap: int,
        eps: float,
        method: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """k-winners per sample among scored (batch, node) rows.

        Returns ``ids [B, W]``, ``row [B, W]`` (index into the scored rows, -1 if none) and
        ``valid [B, W]`` (selected, scored and score > eps).
        """

    @abc.abstractmethod
    def update(
        self,
        cand: Candidates,
        alpha: torch.Tensor,
        prev: ActiveState,
        ids: torch.Tensor,
        row: torch.Tensor,
        valid: torch.Tensor,
        ln_weight: torch.Tensor,
        ln_bias: torch.Tensor,
    ) -> ActiveState:
        """New state of the selected nodes: h_i = LN(h~_i + h_i_prev) * alpha_i."""

    def step(
        self,
        state: ActiveState,
        graph: Graph,
        w_h: torch.Tensor,
        b_h: torch.Tensor,
        theta: torch.Tensor,
        ln_weight: torch.Tensor,
        ln_bias: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
        inhibition: float,
        cap: int,
        eps: float,
        method: str,
    ) -> ActiveState:
        """One whole propagation step: propagate -> inhibit -> select -> update.

        A composite op: this default is its definition, written with the four ops above, and
        every backend that does not override it runs exactly that sequence. A backend may fuse
        it (the Triton backend does) but must return the same state.
        """
        cand = self.propagate(state, graph, w_h, b_h, theta, gamma=gamma, temperature=temperature)
        alpha = self.inhibit(cand, graph, strength=inhibition)
        ids, row, valid = self.select(
            cand.batch,
            cand.node,
            alpha,
            state.ids.shape[0],
            graph.n_nodes,
            cap=cap,
            eps=eps,
            method=method,
        )
        return self.update(cand, alpha, state, ids, row, valid, ln_weight, ln_bias)

    @abc.abstractmethod
    def readout(
        self, state: ActiveState, w_o: torch.Tensor, b_o: torch.Tensor, *, normalise: bool
    ) -> torch.Tensor:
        """logits = W_o sum_i alpha_i h_i + b_o (optionally divided by the active count)."""

    # --- mapping ---------------------------------------------------------------------------
    @abc.abstractmethod
    def prepare(self, model: RSGN) -> Program:
        """Map a trained model onto this target once; returns a runnable Program."""

    # --- cost counting -----------------------------------------------------------------------
    def count(self, event: str, n: float) -> None:
        """Add ``n`` events to the current ledger (no-op when not counting)."""
        if self.ledger is not None:
            self.ledger.add(event, n)

    def count_op(self, op: str) -> None:
        """Charge the following ``count`` calls to ``op`` (no-op when not counting)."""
        if self.ledger is not None:
            self.ledger.op(op)
