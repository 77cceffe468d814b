"""The neuromorphic backend: RSGN on a simulated event-driven chip (``rsgn.neuromorphic``).

Mapping (``prepare``)
---------------------
- **Compartments.** Node ``i`` is ``d + 1`` simulator neurons (one compartment each): ``d``
  state compartments ``i*(d+1) + k`` (k < d) and one gate compartment ``i*(d+1) + d``, all on
  the same core. Capacity is counted in compartments: ``N (d + 1)`` neurons.
- **Placement by hyperbolic locality.** Nodes are ordered along a Morton (Z) curve over their
  tangent coordinates ``logmap0(p_i)`` (for ``D = 2`` the library's ``place_by_coordinates``)
  and dealt to cores ``nodes_per_core`` at a time in the mesh's Morton core order, so geometric
  neighbours share a core (0 hops) or a nearby tile. By default a core holds one hyperbolic
  neighbourhood (``K`` = in-edge slots per node) or an even share of one chip's cores,
  whichever is larger, capped by the compartment budget and halved until every per-core limit
  (fan-in / fan-out axons, synaptic memory) holds; the number of chips grows as needed.
  (Fewer, fuller cores cost fewer hops but serialise more work per core: ``nodes_per_core``.)
- **Split nodes.** A node's compartments can overflow a core on their own: a hub with
  out-degree ``o`` needs ``o (d + 1)`` fan-out axons (one per compartment and destination
  core), and ``d + 1`` may exceed ``max_neurons``. Messages are channel-wise (state ``k`` only
  feeds state ``k``), so the compartments split into ``S`` contiguous slices (the gate in the
  last) on ``S`` consecutive cores of the Morton order, slice ``s`` of every node of a group
  sharing core ``s``: fan-out and fan-in axons per node and core fall by ``S``. When one node
  per core does not fit, ``S = 2, 4, 8, ...`` (then ``d + 1``) is tried, each with the
  nodes-per-core halving above; the first that fits is used (``node_split`` fixes it). The
  node program's cross-channel terms then cost an exchange between the slices, counted and
  timed per step (``_exchange``: partial sums to the gate slice, score and LayerNorm
  statistics back, an all-gather of ``h`` for the ``W_h`` projection; one packet per value)
  and charged in the ledger's ``exchange`` op; the projection's latency is taken per slice
  core (``d |state_s|`` MACs each).
- **Synapses** (global indices, ``c = d + 1``):

  ======================  ======================  ===========  =================================
  source                  destination             weight       role
  ======================  ======================  ===========  =================================
  state ``(j, k)``        state ``(i, k)``        ``w_ji``     message along in-edge ``j -> i``
  gate ``j``              gate ``j``              1            carries ``alpha_j`` to step t+1
  gate ``j``              state ``(j, k)``        0            keeps an active node's
                                                               compartments awake (residual)
  gate ``j``              gate ``i``              0            wakes the gate of a reached node
  ======================  ======================  ===========  =================================

  ``E (d + 1) + N (d + 1)`` synapses. The zero-weight synapses carry no value; they make every
  compartment of a node active at step ``t-1`` (whose ``h_prev`` and ``alpha_prev`` are
  compartment state) and the gate of every node it reaches receive an event at step ``t``, so
  the ``touched_only`` policy updates exactly the candidate set of the reference (nodes in A
  or reached from A), each of which can then emit.

Running a batch (``Program(x)``)
--------------------------------
The model's forward drives the op sequence ``graph -> ignite -> n_steps x (propagate, inhibit,
select, update) -> readout``. ``ignite`` and ``readout`` run on the host. At the first
``propagate`` call each sample of the batch runs as one inference on the chip
(``Simulator.run``: one SimPy process, SimPy owns the clock, the per-synapse arithmetic is
vectorised numpy); the remaining op calls of the forward pass replay its per-step results.

One simulator step = one RSGN propagation step:

1. *Chip events (network + synaptic phase).* Active node ``j`` emitted, at the end of the
   previous step, graded payloads ``g_jk = alpha_j (W_h h_j)_k`` from its state compartments
   and ``alpha_j`` from its gate. Packets travel the mesh (XY routing, one packet per event and
   destination core) and each destination core accumulates
   ``m_ik = sum_{j -> i} w_ji g_jk``; the gate receives ``alpha_j(t-1)``.
2. *On-chip neuron work (the node program, costed as one neuron update per compartment, active
   or idle per the idle policy):* ``h~_i = m_i + b_h``;
   ``alpha_i = sigmoid((alpha_prev + gamma |h~_i| - theta_i) / T)``; divisive inhibition
   ``alpha_i / (1 + beta mean_{R(i)} alpha_j)`` (R(i) are geometric neighbours, mostly
   co-located: the exchange is charged as part of the neuron update, not as extra packets);
   ``h_i = LN(h~_i + h_prev) alpha_i``; and the payload projection ``W_h h_i`` of every node
   that emits, counted as ``d^2`` MACs per emitting node at the preset's synaptic-op energy
   (``nm_projection_mac``) and added to the latency as ``max_core(emitting nodes) d^2 t_synop``
   per step (an upper bound: serialised after the core phase).
3. *Host / global step:* the active-set cap (exact k-winners per sample) is computed by the
   host (``TorchBackend.select``), charged at the host energy table (``electronic_45nm``) and
   not timed. Spark embedding, ignition and the readout are host work as well.

Energy (``Report.ledger``, exact: every term is a counted event times its constant)::

    E = synops e_synop + upd_active e_active + upd_idle e_idle + packets e_tile
      + hops_ew e_ew + hops_ns e_ns + chip_hops e_chip + barriers e_barrier
      + projection_macs e_synop
      + exchange (packets e_tile + hops e_hop + received values e_synop; split nodes only)
      + P_static n_chips latency                       (nm_static: per chip-ps)
      + host events x electronic_45nm energies         (ignite, select, readout)

The report splits the energy (``energy_split_j``) into ``dynamic`` (activity-driven chip
events: synaptic ops, neuron updates, packets, hops, the W_h projection; also per inference
in ``dynamic_energy_per_inference_j``), ``per_step`` (barriers: a fixed cost per step,
independent of activity), ``static`` (power x latency) and ``host`` (ignition over all
nodes, k-winners, readout: host work, not chip energy). Under ``touched_only`` the neuron
update term scales with the touched set ``A u out(A)`` (every node reached by an active node
runs its node program to decide whether it ignites), not with ``|A|``: where the
out-neighbourhoods of active nodes overlap (small networks, clustered activity), dynamic
energy falls by less than half when ``|A|`` halves.

Latency per inference = simulated chip latency (``RunReport.latency_ps``: network phase + max
core busy time + barrier per step) + the projection term above + the split-node exchange (its
three rounds per step, serialised after the core phase; zero when nodes are whole).

Modes: ``float`` with ``payload_bits=None`` sends exact payloads (reproduces the torch backend
to float precision); ``payload_bits=b`` quantises every payload to ``b`` signed bits
(saturating) with one LSB per channel: state channel ``k`` sends ``rint(g_jk / s_k)``, the
gate ``rint(alpha_j / s_gate)``, and the receiving compartment ``(i, k)``, which only ever
receives channel ``k``, multiplies its accumulated input by ``s_k`` (the scale a chip folds
into the synaptic weight exponent). By default ``s_k = G_k / (2^(b-1) - 1)`` with the
data-free bound ``G_k = |W_h[k]|_2 (sqrt(d) max|ln_w| + |ln_b|_2)`` on ``|g_jk|`` after the
LayerNorm, and ``s_gate = 1 / (2^(b-1) - 1)`` (``alpha <= 1``); the bound is a worst case,
typically an order of magnitude above the payloads that occur, so
``NeuromorphicProgram.calibrate(x)`` sets ``s_k`` from the largest ``|g_jk|`` of the torch
reference on calibration inputs (larger payloads saturate); ``payload_scale`` fixes one LSB
for all channels. ``fixed`` runs the
bit-accurate integer datapath (integer weights of ``core.weight_bits``, integer payloads,
saturating accumulators) with the node program evaluated on the dequantised inputs;
``sigma_delta=True`` sends only payload changes larger than ``sd_threshold`` (value units
with exact payloads, LSBs of the channel in quantised and fixed modes): a node that
receives no delta is not re-evaluated and holds its state and outputs (an approximation whose
agreement with the reference is reported).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rsgn import geometry
from rsgn import neuromorphic as nm
from rsgn.backends.base import ActiveState, Candidates, Capabilities, Graph, Program, Report
from rsgn.backends.cost import Constant, CostLedger, EnergyTable, load_energy_table
from rsgn.backends.torch_backend import TorchBackend
from rsgn.errors import RsgnError
from rsgn.neuromorphic.report import summary_stats

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.model import RSGN

__all__ = ["NeuromorphicBackend", "NeuromorphicProgram", "MODES", "HOST_TABLE"]

MODES = ("float", "fixed")
HOST_TABLE = "electronic_45nm"
"""Energy table for the host steps (ignition, k-winners, readout)."""

# ledger event -> (profile energy attribute, EventCounts field) for the chip's counted events
_CHIP_EVENTS = {
    "nm_synop": ("synop", "synops"),
    "nm_neuron_update_active": ("neuron_update_active", "neuron_updates_active"),
    "nm_neuron_update_idle": ("neuron_update_idle", "neuron_updates_idle"),
    "nm_tile_spike": ("tile_spike", "packets"),
    "nm_hop_ew": ("hop_ew", "hops_ew"),
    "nm_hop_ns": ("hop_ns", "hops_ns"),
    "nm_chip_hop": ("chip_hop", "chip_hops"),
    "nm_barrier": ("barrier", "barriers"),
}
_EVIDENCE_TO_KIND = {"measured": "measured", "datasheet": "datasheet", "estimate": "assumed"}
# split-node exchange (see _exchange): count -> (ledger event, profile energy attribute, scope)
_EXCHANGE = {
    "packets": (
        "nm_exchange_packet",
        "tile_spike",
        "per packet (one value) between the slices of a split node",
    ),
    "hops_ew": ("nm_exchange_hop_ew", "hop_ew", "per exchange packet per east-west hop"),
    "hops_ns": ("nm_exchange_hop_ns", "hop_ns", "per exchange packet per north-south hop"),
    "chip_hops": ("nm_exchange_chip_hop", "chip_hop", "per exchange packet per chip-to-chip hop"),
    "ops": (
        "nm_exchange_op",
        "synop",
        "per value received and accumulated by a slice of a split node",
    ),
}
# breakdown term -> ledger events
_BREAKDOWN = {
    "synops": ("nm_synop",),
    "neuron_update_active": ("nm_neuron_update_active",),
    "neuron_update_idle": ("nm_neuron_update_idle",),
    "intra_tile_spikes": ("nm_tile_spike",),
    "hops": ("nm_hop_ew", "nm_hop_ns", "nm_chip_hop"),
    "barrier": ("nm_barrier",),
    "projection": ("nm_projection_mac",),
    "exchange": tuple(ev for ev, _, _ in _EXCHANGE.values()),
    "static": ("nm_static",),
}

# activity-driven chip energy: scales with events (the barrier is per step, static per time)
_DYNAMIC_BREAKDOWN = (
    "synops",
    "neuron_update_active",
    "neuron_update_idle",
    "intra_tile_spikes",
    "hops",
    "projection",
    "exchange",
)
_DYNAMIC_TERMS = (
    "synops",
    "neuron_update_active",
    "neuron_update_idle",
    "tile_spikes",
    "hops_ew",
    "hops_ns",
    "chip_hops",
)


def _energy_table(profile: nm.HardwareProfile) -> EnergyTable:
    """Chip events of ``profile`` (prefixed ``nm_``) plus the host table, with provenance."""
    host = load_energy_table(HOST_TABLE)
    events: dict[str, Constant] = {}
    for ev, (attr, _) in _CHIP_EVENTS.items():
        c = profile.constants[f"energy.{attr}"]
        events[ev] = Constant(
            float(c.value),
            c.unit,
            f"preset {profile.name} energy.{attr}: {c.source} [evidence: {c.evidence}]",
            _EVIDENCE_TO_KIND[c.evidence],
            c.scope,
        )
    c = profile.constants["energy.synop"]
    events["nm_projection_mac"] = Constant(
        float(c.value),
        c.unit,
        f"preset {profile.name} energy.synop (W_h projection as a dense on-core projection, one "
        f"synaptic op per MAC): {c.source} [evidence: {c.evidence}]",
        "derived",
        "per MAC of the d x d payload projection of an emitting node",
    )
    for ev, attr, scope in _EXCHANGE.values():
        c = profile.constants[f"energy.{attr}"]
        events[ev] = Constant(
            float(c.value),
            c.unit,
            f"preset {profile.name} energy.{attr} (exchange between the cores of a node split "
            f"over several cores): {c.source} [evidence: {c.evidence}]",
            "derived",
            scope,
        )
    c = profile.constants["energy.static_power"]
    events["nm_static"] = Constant(
        float(c.value) * 1e-3,
        "pJ",
        f"preset {profile.name} energy.static_power {c.value} mW x 1 ps (1 mW x 1 ps = 1e-3 pJ): "
        f"{c.source} [evidence: {c.evidence}]",
        "derived",
        "per chip per ps of simulated latency",
    )
    for ev, const in host.events.items():
        events[ev] = Constant(
            const.value, const.unit, f"host: {const.source}", const.kind, const.scope
        )
    meta = {"chip_preset": profile.name, "host_table": HOST_TABLE}
    return EnergyTable(name=f"{profile.name}+{HOST_TABLE}", events=events, meta=meta)


def _morton_rank(coords: np.ndarray) -> np.ndarray:
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


def _pad(t: torch.Tensor, width: int, value: float | int | bool) -> torch.Tensor:
    """Pad dim 1 of ``t`` to ``width`` with ``value``."""
    if t.shape[1] == width:
        return t
    shape = (t.shape[0], width - t.shape[1], *t.shape[2:])
    return torch.cat([t, torch.full(shape, value, dtype=t.dtype, device=t.device)], 1)


def _cat_states(states: list[ActiveState]) -> ActiveState:
    """Stack per-sample states ``[1, W_b, ...]`` into one ``[B, max W_b, ...]`` state."""
    w = max(s.ids.shape[1] for s in states)
    return ActiveState(
        ids=torch.cat([_pad(s.ids, w, 0) for s in states]),
        valid=torch.cat([_pad(s.valid, w, False) for s in states]),
        alpha=torch.cat([_pad(s.alpha, w, 0.0) for s in states]),
        h=torch.cat([_pad(s.h, w, 0.0) for s in states]),
    )


@dataclass
class _StepRecord:
    """One sample's results of one propagation step (what the op calls replay)."""

    cand: Candidates
    alpha: torch.Tensor
    ids: torch.Tensor
    row: torch.Tensor
    valid: torch.Tensor
    state: ActiveState


@dataclass
class _Inference:
    """Host mirror of one inference: the compartments' state and the per-step records."""

    prev: ActiveState
    xin: np.ndarray
    yout: np.ndarray
    records: dict[int, _StepRecord] = field(default_factory=dict)
    proj_macs: int = 0
    proj_ps: int = 0
    exchange: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_EXCHANGE, 0))
    exchange_ps: int = 0


class NeuromorphicBackend(TorchBackend):
    """RSGN on a simulated Loihi/TrueNorth/SpiNNaker-like chip (see the module docstring).

    Parameters
    ----------
    preset : str, optional
        Chip preset (``rsgn.neuromorphic.list_presets()``); default ``loihi2_est``. RSGN sends
        graded payloads, so binary-spike chips (``loihi``, ``truenorth``) are refused at
        ``prepare``.
    mode : {"float", "fixed"}
        Float64 datapath, or the bit-accurate integer datapath.
    payload_bits : int, optional
        Graded payload width; ``None`` sends exact payloads (float mode; fixed mode then uses
        ``accumulator_bits - weight_bits - ceil(log2(fan-in + 1)) - 1`` bits, capped by the
        chip's ``max_payload_bits``).
    sigma_delta : bool
        Send payload changes only (``|delta| > sd_threshold``).
    idle_policy : {"all", "active_cores", "touched_only"}
    seed : int
        Seeds the simulator's per-step rng (the RSGN node program is deterministic).
    device : torch device for the host steps (default cpu).
    overrides : mapping, optional
        Preset constants to replace, ``{"core.max_neurons": 64}`` (``neuromorphic.override``).
    nodes_per_core : int, optional
        Fixed nodes per core; default: one neighbourhood or an even share of a chip (see the
        module docstring).
    node_split : int, optional
        Cores each node's ``d + 1`` compartments are split over (``1 .. d + 1``); default:
        1, or the smallest power of two (then ``d + 1``) at which the core limits hold when
        one node per core does not fit (module docstring, "Split nodes").
    chips : int, optional
        Fixed number of chips; default: as many as the placement needs.
    payload_scale : float, optional
        One payload LSB in value units for every channel (quantised modes); default: per
        channel from the bound ``G_k`` (module docstring), or ``Program.calibrate(x)``.
    sd_threshold : float
        Sigma-delta threshold in value units (exact payloads) or LSBs (quantised and fixed
        modes).
    reference : bool
        Also run the torch reference on each batch and report the agreement.
    """

    name = "neuromorphic"

    def __init__(
        self,
        preset: str | None = None,
        mode: str = "float",
        payload_bits: int | None = None,
        sigma_delta: bool = False,
        idle_policy: str = "touched_only",
        seed: int = 0,
        device: str | torch.device | None = None,
        *,
        overrides: dict[str, float] | None = None,
        nodes_per_core: int | None = None,
        node_split: int | None = None,
        chips: int | None = None,
        payload_scale: float | None = None,
        sd_threshold: float = 0.0,
        reference: bool = True,
    ) -> None:
        super().__init__(device=device or "cpu", preset=HOST_TABLE)
        known = nm.list_presets()
        name = (preset or "loihi2_est").strip().lower()
        if name not in known:
            raise RsgnError(
                f"unknown preset {preset!r} for the neuromorphic backend (known: "
                f"{', '.join(known)})"
            )
        if mode not in MODES:
            raise RsgnError(
                f"unknown mode {mode!r} for the neuromorphic backend (known: float, fixed)"
            )
        if idle_policy not in nm.IDLE_POLICIES:
            raise RsgnError(
                f"unknown idle_policy {idle_policy!r} (known: {', '.join(nm.IDLE_POLICIES)})"
            )
        if payload_bits is not None and int(payload_bits) < 2:
            raise RsgnError(f"payload_bits must be >= 2 (graded payloads), got {payload_bits}")
        for what, v in (
            ("nodes_per_core", nodes_per_core),
            ("node_split", node_split),
            ("chips", chips),
        ):
            if v is not None and int(v) < 1:
                raise RsgnError(f"{what} must be >= 1, got {v}")
        if payload_scale is not None and not payload_scale > 0:
            raise RsgnError(f"payload_scale must be > 0, got {payload_scale}")
        if not sd_threshold >= 0:
            raise RsgnError(f"sd_threshold must be >= 0, got {sd_threshold}")
        try:
            prof = nm.load_preset(name)
            if overrides:
                prof = nm.override(prof, overrides)
        except nm.PresetError as exc:
            raise RsgnError(f"neuromorphic preset {name}: {exc}") from None
        self.preset_name = name
        self.profile = prof
        self.mode = mode
        self.payload_bits = None if payload_bits is None else int(payload_bits)
        self.sigma_delta = bool(sigma_delta)
        self.idle_policy = idle_policy
        self.seed = int(seed)
        self.nodes_per_core = None if nodes_per_core is None else int(nodes_per_core)
        self.node_split = None if node_split is None else int(node_split)
        self.chips = None if chips is None else int(chips)
        self.payload_scale = payload_scale
        self.sd_threshold = float(sd_threshold)
        self.reference = bool(reference)
        self._run: _BatchRun | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def capabilities(self) -> Capabilities:
        return Capabilities(
            differentiable=False,
            devices=("cpu",),
            metrics={
                "accuracy": "measured (on the simulated chip's outputs)",
                "active_fraction": "measured",
                "latency": "modelled (SimPy chip time per inference: network phase + max core "
                "busy time + barrier per step, plus the W_h projection bound and, for nodes "
                "split over cores, their exchange; host steps not timed)",
                "energy_modelled": "modelled (counted chip events x per-event energy of the "
                "preset + static power x latency + host events x electronic_45nm)",
                "energy_measured": "n/a: a simulated chip has no power counter",
                "event_counts": "modelled (simulated synaptic ops, updates, packets, hops)",
                "neurobench": "modelled (dense / effective MACs / ACs, activation and "
                "connection sparsity, footprint)",
                "host_latency": "n/a: ignition, k-winners and readout on the host are not timed",
                "wall_time": "measured (simulation wall clock, not a hardware figure)",
            },
            notes="float mode with payload_bits=None reproduces the torch backend",
        )

    # ------------------------------------------------------------------ replayed ops
    def _current(self) -> _BatchRun:
        if self._run is None:
            raise RsgnError(
                "the neuromorphic backend runs a model through its Program: use "
                "backend.prepare(model)(x)"
            )
        return self._run

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
        """Host step: ``TorchBackend.ignite`` (charged to the host table)."""
        return super().ignite(sparks, spark_a, graph, sigma=sigma, eps=eps, cap=cap, method=method)

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
        """Chip: the first call runs every sample's inference on the simulated chip; each
        call returns that step's candidates (concatenated over the batch)."""
        run = self._current()
        if run.step == 0:
            run.simulate(state, w_h, b_h, theta, gamma=gamma, temperature=temperature)
        return run.cand[run.step]

    def inhibit(self, cand: Candidates, graph: Graph, *, strength: float) -> torch.Tensor:
        """Chip (neuron work): the inhibited activations computed during the run."""
        return self._current().alpha[self._current().step]

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
        """Host: the k-winners computed during the run (one host call per sample and step)."""
        return self._current().sel[self._current().step]

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
        """Chip (neuron work): the new states computed during the run."""
        run = self._current()
        st = run.state[run.step]
        run.step += 1
        return st

    def readout(
        self, state: ActiveState, w_o: torch.Tensor, b_o: torch.Tensor, *, normalise: bool
    ) -> torch.Tensor:
        """Host step: ``TorchBackend.readout`` of the final node states read off the chip."""
        return super().readout(state, w_o, b_o, normalise=normalise)

    # ------------------------------------------------------------------ mapping
    def prepare(self, model: RSGN) -> NeuromorphicProgram:
        return NeuromorphicProgram(self, model)


class _BatchRun:
    """One batch: runs each sample on the chip and keeps batch-level per-step results."""

    def __init__(self, program: NeuromorphicProgram) -> None:
        self.p = program
        self.step = 0
        self.cand: list[Candidates] = []
        self.alpha: list[torch.Tensor] = []
        self.sel: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.state: list[ActiveState] = []
        self.runs: list[nm.RunReport] = []
        self.latency_ps: list[int] = []
        self.proj_macs = 0
        self.proj_macs_per: list[int] = []
        self.exchange = dict.fromkeys(_EXCHANGE, 0)
        self.exchange_per: list[dict[str, int]] = []

    def simulate(
        self,
        st0: ActiveState,
        w_h: torch.Tensor,
        b_h: torch.Tensor,
        theta: torch.Tensor,
        *,
        gamma: float,
        temperature: float,
    ) -> None:
        p = self.p
        n_steps = p.model.cfg.n_steps
        p.step_args = (w_h, b_h, theta, gamma, temperature)
        g0 = (st0.alpha.unsqueeze(-1) * (st0.h @ w_h.T)).detach()  # the torch propagate's g
        per_sample: list[_Inference] = []
        for b in range(st0.ids.shape[0]):
            prev = ActiveState(
                ids=st0.ids[b : b + 1],
                valid=st0.valid[b : b + 1],
                alpha=st0.alpha[b : b + 1],
                h=st0.h[b : b + 1],
            )
            inf = _Inference(
                prev=prev,
                xin=np.zeros(p.n_neurons, dtype=np.float64),
                yout=np.zeros(p.n_neurons, dtype=np.float64),
            )
            y0 = p.emit(inf, prev, g0[b : b + 1])
            p.inf = inf
            try:
                rep = p.sim.run(n_steps=n_steps, initial_output=p.encode_output(y0))
            finally:
                p.inf = None
            for t in range(n_steps):  # a silent chip calls no neuron update: no input at all
                if t not in inf.records:
                    p.node_step(inf, t, np.zeros(0, dtype=np.int64), np.zeros(0))
            per_sample.append(inf)
            self.runs.append(rep)
            self.latency_ps.append(int(rep.latency_ps) + inf.proj_ps + inf.exchange_ps)
            self.proj_macs += inf.proj_macs
            self.proj_macs_per.append(inf.proj_macs)
            for k, v in inf.exchange.items():
                self.exchange[k] += v
            self.exchange_per.append(dict(inf.exchange))
        self._assemble(per_sample, st0, n_steps)

    def _assemble(self, infs: list[_Inference], st0: ActiveState, n_steps: int) -> None:
        prev_w = st0.ids.shape[1]
        for t in range(n_steps):
            recs = [inf.records[t] for inf in infs]
            cands, alphas, ids, rows, valids = [], [], [], [], []
            off = 0
            w = max(r.ids.shape[1] for r in recs)
            for b, r in enumerate(recs):
                c = r.cand
                pr = torch.where(c.prev_row >= 0, c.prev_row + b * prev_w, c.prev_row)
                cands.append((torch.full_like(c.node, b), c.node, c.htilde, c.alpha, pr))
                alphas.append(r.alpha)
                ids.append(_pad(r.ids, w, 0))
                rows.append(_pad(torch.where(r.row >= 0, r.row + off, r.row), w, -1))
                valids.append(_pad(r.valid, w, False))
                off += c.node.numel()
            cat = [torch.cat(z) for z in zip(*cands, strict=True)]
            self.cand.append(Candidates(*cat, n_batch=len(recs)))
            self.alpha.append(torch.cat(alphas))
            self.sel.append((torch.cat(ids), torch.cat(rows), torch.cat(valids)))
            state = _cat_states([r.state for r in recs])
            self.state.append(state)
            prev_w = state.ids.shape[1]


class NeuromorphicProgram(Program):
    """An RSGN mapped onto the chip: placement, synapses, simulator (see module docstring)."""

    def __init__(self, backend: NeuromorphicBackend, model: RSGN) -> None:
        self.backend = backend
        self.model = model.eval().to(backend.device)
        self.device = backend.device
        cfg = model.cfg
        self.n_nodes, self.d = cfg.n_nodes, cfg.d_hidden
        self.c = self.d + 1
        self.n_neurons = self.n_nodes * self.c
        self.inf: _Inference | None = None
        self.step_args: tuple = ()
        with torch.no_grad():
            saved, backend.ledger = backend.ledger, None
            try:
                self.graph: Graph = model.build_graph(backend)
            finally:
                backend.ledger = saved
        prof = backend.profile
        core = prof.chip.core
        if core.max_payload_bits < 2:
            raise RsgnError(
                f"preset {prof.name} sends binary spikes only (core.max_payload_bits "
                f"{core.max_payload_bits}); RSGN's graded payloads need a graded-spike chip "
                "(loihi2_est, spinnaker2)"
            )
        self.fixed = backend.mode == "fixed"
        self._build_synapses()
        self._choose_coding()
        self._place_and_build()
        self.table = _energy_table(prof)

    # ------------------------------------------------------------------ mapping
    def _build_synapses(self) -> None:
        """Message, gate and keep-alive synapses (module docstring) as COO arrays."""
        g, n, d, c = self.graph, self.n_nodes, self.d, self.c
        mask = g.in_mask.cpu().numpy()
        dst_node, slot = np.nonzero(mask)
        src_node = g.in_idx.cpu().numpy()[dst_node, slot]
        w_edge = g.w.detach().cpu().double().numpy()[dst_node, slot]
        k = np.arange(d, dtype=np.int64)
        msg_src = (src_node[:, None] * c + k).ravel()
        msg_dst = (dst_node[:, None] * c + k).ravel()
        msg_w = np.repeat(w_edge, d)
        nodes = np.arange(n, dtype=np.int64)
        gate = nodes * c + d
        keep_dst = (nodes[:, None] * c + k).ravel()
        self.n_edges = int(dst_node.size)
        self.max_fanin = int(mask.sum(1).max(initial=0))
        out_deg = np.bincount(src_node, minlength=n)
        self.hub = int(out_deg.argmax()) if n else 0
        self.max_fanout = int(out_deg.max(initial=0))
        self.coo = (
            np.concatenate([msg_src, gate, np.repeat(gate, d), src_node * c + d]),
            np.concatenate([msg_dst, gate, keep_dst, dst_node * c + d]),
            msg_w,
            self.n_edges * d,
        )

    def _choose_coding(self) -> None:
        """Payload width and LSB, and (fixed mode) integer weights."""
        be, core = self.backend, self.backend.profile.chip.core
        m = self.model
        bits = be.payload_bits
        if self.fixed and bits is None:
            head = core.accumulator_bits - core.weight_bits - 1
            bits = min(core.max_payload_bits, head - math.ceil(math.log2(self.max_fanin + 2)))
            if bits < 2:
                raise RsgnError(
                    f"preset {be.profile.name}: accumulator_bits {core.accumulator_bits} leave "
                    "no room for a graded payload in fixed mode"
                )
        self.bits = bits
        if bits is None:
            chan = np.ones(self.c)
        elif be.payload_scale is not None:
            chan = np.full(self.c, float(be.payload_scale))
        else:
            # per channel: |g_jk| <= |W_h[k]|_2 |h_j|_2 with |LN(.)|_2 <= sqrt(d) max|ln_w|
            # + |ln_b|_2; the gate carries alpha <= 1
            wh = m.w_h.weight.detach().double()
            h_max = math.sqrt(self.d) * float(m.ln.weight.detach().abs().max()) + float(
                m.ln.bias.detach().double().norm()
            )
            top = (1 << (bits - 1)) - 1
            chan = np.append((wh.norm(dim=1) * h_max).clamp_min(1e-12).numpy(), 1.0) / top
        self._set_scales(chan)
        src, dst, msg_w, n_msg = self.coo
        n_gate = self.n_nodes
        if self.fixed:
            wq, self.w_scale = nm.quantize_weights(msg_w, core.weight_bits)
            weights = np.concatenate(
                [wq, np.ones(n_gate, dtype=np.int64), np.zeros(src.size - n_msg - n_gate, np.int64)]
            )
        else:
            self.w_scale = 1.0
            weights = np.concatenate([msg_w, np.ones(n_gate), np.zeros(src.size - n_msg - n_gate)])
        self.weights = weights
        self.coding = nm.PayloadCoding(
            bits=bits,
            scale=1.0,
            sigma_delta=be.sigma_delta,
            threshold=be.sd_threshold,
        )

    def _set_scales(self, chan: np.ndarray) -> None:
        """Per-channel payload LSBs ``chan`` (``d`` state channels, then the gate)."""
        self.chan_scale = np.asarray(chan, dtype=np.float64)
        self.comp_scale = np.tile(self.chan_scale, self.n_nodes)
        self.scale = float(self.chan_scale.max())

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, headroom: float = 1.0) -> np.ndarray:
        """Set each channel's payload LSB from data: ``headroom x max |g_k|`` over the active
        nodes and steps of the torch reference on ``x`` (e.g. training inputs) maps to the
        largest payload, larger values saturate; the gate keeps ``1 / (2^(b-1) - 1)``.
        Quantised modes only; returns the per-channel LSBs."""
        if self.bits is None:
            raise RsgnError("calibrate() needs a payload width (payload_bits or fixed mode)")
        if not headroom > 0:
            raise RsgnError(f"headroom must be > 0, got {headroom}")
        peak = torch.zeros(self.d, dtype=torch.float64)

        class _Peak(TorchBackend):
            def propagate(
                be,  # noqa: N805
                state: ActiveState,
                graph: Graph,
                w_h: torch.Tensor,
                *args: Any,
                **kw: Any,
            ) -> Candidates:
                g = state.alpha.unsqueeze(-1) * (state.h @ w_h.T)
                peak.copy_(torch.maximum(peak, g[state.valid].abs().double().amax(0).cpu()))
                return TorchBackend.propagate(be, state, graph, w_h, *args, **kw)

            def update(be, *args: Any, **kw: Any) -> ActiveState:  # noqa: N805
                st = TorchBackend.update(be, *args, **kw)
                g = st.alpha.unsqueeze(-1) * (st.h @ self.model.w_h.weight.T)
                if st.valid.any():
                    peak.copy_(torch.maximum(peak, g[st.valid].abs().double().amax(0).cpu()))
                return st

        self.model(x.to(self.device), backend=_Peak(device=self.device), graph=self.graph)
        top = (1 << (self.bits - 1)) - 1
        chan = np.append((peak * headroom).clamp_min(1e-12).numpy(), 1.0) / top
        self._set_scales(chan)
        return self.chan_scale.copy()

    def _node_cores(self, topo: nm.Topology, per: int, split: int) -> np.ndarray:
        """Cores of each node's slices, ``[n, split]``: nodes in Morton order over their
        tangent coordinates (locality) are dealt ``per`` at a time to groups of ``split``
        consecutive cores of the mesh's Morton core order; slice ``s`` of a group's nodes
        shares core ``s`` of the group. (For ``D = 2`` the rank equals the library's
        ``place_by_coordinates``.)"""
        coords = geometry.logmap0(self.graph.x.detach().double()).cpu().numpy()
        group = _morton_rank(coords) // per
        need = (int(group.max(initial=0)) + 1) * split
        if need > topo.n_cores:
            raise nm.CapacityError(
                f"{self.n_nodes} nodes at {per} per core group of {split} core(s) need {need} "
                f"cores, but the system has {topo.n_cores} ({topo.n_chips} chip(s))"
            )
        return nm.core_order(topo)[group[:, None] * split + np.arange(split)]

    def _slices(self, split: int) -> np.ndarray:
        """Slice of each compartment ``k = 0 .. d`` (contiguous, sizes differ by at most one;
        the gate ``k = d`` is in the last slice)."""
        return (np.arange(self.c, dtype=np.int64) * split) // self.c

    def _capacity_hint(self, reason: str, split: int) -> str:
        """Why one node per core can still overflow: each of a node's c compartments sends one
        axon to the core of every out-neighbour (c x out-degree fan-out axons) and receives one
        from every compartment of every in-neighbour (c x in-degree fan-in axons); splitting a
        node's compartments over ``split`` cores divides both by about ``split``."""
        per = -(-self.c // split)  # compartments in the largest slice
        what = f"{per} compartments" + (" per slice" if split > 1 else "")
        more = (
            "; node_split > 1 spreads a node over several cores"
            if split == 1
            else f" at node_split {split}"
        )
        if "fan-out axons" in reason:
            return (
                f" (node {self.hub} has {self.max_fanout} out-neighbours: x {what} = "
                f"{self.max_fanout * per} axons{more})"
            )
        if "fan-in axons" in reason:
            return (
                f" (up to {self.max_fanin} in-neighbours x {what} = "
                f"{self.max_fanin * per} axons into one core{more})"
            )
        return ""

    def _split_options(self) -> list[int]:
        """Node splits to try: the user's, else 1, 2, 4, ... and finally ``d + 1``."""
        fixed = self.backend.node_split
        if fixed is not None:
            if fixed > self.c:
                raise RsgnError(
                    f"node_split {fixed} > {self.c} compartments per node (d_hidden {self.d} "
                    "+ gate)"
                )
            return [fixed]
        out = [1]
        while out[-1] * 2 < self.c:
            out.append(out[-1] * 2)
        return out + [self.c]

    def _place_and_build(self) -> None:
        """Place nodes and build the simulator: for each node split (``_split_options``),
        halve nodes per core until the core limits hold; the first split that fits wins.
        Capacity failures become one-line RsgnErrors naming model and preset."""
        be, prof = self.backend, self.backend.profile
        core = prof.chip.core
        n, c = self.n_nodes, self.c
        src, dst, _, _ = self.coo
        size = (
            f"RSGN with {n} nodes x {c} compartments ({self.n_neurons} neurons, {src.size} "
            f"synapses, up to {self.max_fanin} in-edges per node)"
        )
        model = nm.Callback(self._update_float, self._update_fixed, graded=True, name="rsgn_node")
        cfg = nm.SimConfig(
            precision=be.mode,
            payload=self.coding,
            idle_policy=be.idle_policy,
            seed=be.seed,
            record="none",
        )
        syn = nm.SynapseList.from_arrays(src, dst, self.weights, self.n_neurons)
        slots = int(self.graph.in_idx.shape[1])
        spread = max(-(-n // prof.chip.cores_per_chip), slots)
        failure = ""
        for split in self._split_options():
            slices = self._slices(split)
            per_max = core.max_neurons // int(np.bincount(slices).max())
            if per_max < 1:
                failure = (
                    f"{size} does not fit preset {prof.name}: one node needs {c} compartments "
                    f"but a core holds max_neurons {core.max_neurons}"
                    + (f" (at node_split {split})" if split > 1 else "")
                )
                continue
            per = min(be.nodes_per_core or min(per_max, spread), n)
            if per > per_max:
                failure = (
                    f"{size} does not fit preset {prof.name}: nodes_per_core {per} x "
                    f"{-(-c // split)} compartments > max_neurons {core.max_neurons}"
                )
                continue
            sim = None
            while True:
                need = -(-n // per) * split
                if be.chips is not None:
                    topo = nm.Topology.for_cores(prof, be.chips * prof.chip.cores_per_chip)
                else:
                    topo = nm.Topology.for_cores(prof, need)
                try:
                    cores = self._node_cores(topo, per, split)
                    place = cores[:, slices].ravel()
                    net = nm.Network([nm.NeuronGroup("rsgn", self.n_neurons, model, place)], syn)
                    sim = nm.Simulator(net, prof, topo, cfg)
                    break
                except nm.CapacityError as exc:
                    if be.nodes_per_core is None and per > 1:
                        per = max(1, per // 2)
                        continue
                    failure = (
                        f"{size} does not fit preset {prof.name} at {per} nodes per core: "
                        f"{exc}" + self._capacity_hint(str(exc), split)
                    )
                    break
                except nm.NeuromorphicError as exc:
                    raise RsgnError(f"preset {prof.name}: {exc}") from None
            if sim is not None:
                break
        else:
            raise RsgnError(failure)
        self.nodes_per_core = per
        self.split = split
        self.slice_cores = cores
        state = np.bincount(slices[: self.d], minlength=split)
        self.state_sizes = state
        # MACs of the payload projection per core and emitting node (slice s computes its
        # state channels' outputs from all d inputs: d x |state_s| MACs)
        self.slice_macs = self.d * state
        self.topology = topo
        self.sim = sim
        self.network = net

    def _exchange(self, inf: _Inference, cand: np.ndarray, win: np.ndarray) -> None:
        """Count and time the traffic between the slices of split nodes in one step (none
        when ``split == 1``). Three rounds, one packet per 32-bit value, XY-routed:

        1. every candidate's non-gate slices send their partials of ``|h~|^2``,
           ``sum (h~ + h_prev)`` and ``sum (h~ + h_prev)^2`` to the gate slice (3 values);
        2. the gate slice of every winner returns the score and the LayerNorm mean and
           ``1/std`` to the other slices (3 values each);
        3. the state slices of every winner all-gather ``h`` for the ``W_h`` projection
           (slice ``s`` sends its ``|state_s|`` values to each other state slice).

        Time per round = ``analytic_network_time_ps`` of its packets + the most values one
        core receives x ``t_synop`` (one accumulate each); energy = packets, hops and
        received values at the preset's packet, hop and synaptic-op energies."""
        split = self.split
        if split == 1:
            return
        sc, gs, sizes = self.slice_cores, split - 1, self.state_sizes
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
        topo, t = self.topology, self.backend.profile.timing
        for src, dst in rounds:
            h = topo.hops(src, dst)
            x = inf.exchange
            x["packets"] += int(src.size)
            x["hops_ew"] += int(h.ew.sum())
            x["hops_ns"] += int(h.ns.sum())
            x["chip_hops"] += int(h.chip.sum())
            x["ops"] += int(src.size)
            t_net, _ = nm.analytic_network_time_ps(topo, src, dst)
            inf.exchange_ps += int(t_net) + int(np.bincount(dst).max()) * t.synop_ps

    # ------------------------------------------------------------------ the node program
    def encode_output(self, y: np.ndarray) -> np.ndarray:
        """Value-unit outputs to what the simulator takes (integer LSBs in fixed mode)."""
        if self.fixed:
            return np.rint(y / self.comp_scale).astype(np.int64)
        return y / self.comp_scale

    def emit(self, inf: _Inference, st: ActiveState, g: torch.Tensor) -> np.ndarray:
        """Full output vector of the active nodes of ``st`` (payloads ``g`` [1, W, d] and
        gates ``alpha``); counts the W_h projection (d^2 MACs per emitting node) and its time
        ``max_core(emitting nodes) d^2 t_synop``."""
        y = np.zeros(self.n_neurons, dtype=np.float64)
        valid = st.valid[0].cpu()
        nodes = st.ids[0].cpu()[valid].numpy()
        if nodes.size:
            gv = g[0][valid].detach().cpu().double().numpy()
            base = nodes * self.c
            y[(base[:, None] + np.arange(self.d)).ravel()] = gv.ravel()
            y[base + self.d] = st.alpha[0][valid].detach().cpu().double().numpy()
            per_core = np.bincount(
                self.slice_cores[nodes].ravel(), weights=np.tile(self.slice_macs, nodes.size)
            )
            inf.proj_macs += int(nodes.size) * self.d * self.d
            inf.proj_ps += int(per_core.max()) * self.backend.profile.timing.synop_ps
        return y

    def _update_float(self, state, idx, x, ctx) -> np.ndarray:
        assert self.inf is not None
        s = self.comp_scale[idx]
        return self.node_step(self.inf, ctx.step, idx, np.asarray(x, dtype=np.float64) * s) / s

    def _update_fixed(self, state, idx, x, ctx) -> np.ndarray:
        assert self.inf is not None
        s = self.comp_scale[idx]
        xs = np.asarray(x, dtype=np.float64) * s
        gate = idx % self.c == self.d
        xs[~gate] *= self.w_scale
        y = self.node_step(self.inf, ctx.step, idx, xs)
        return np.rint(y / s).astype(np.int64)

    def node_step(self, inf: _Inference, t: int, idx: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The node program of step ``t`` for the updated compartments ``idx`` with inputs
        ``x`` (value units); returns their outputs. Host mirror of the compartment state.

        Candidates are the updated nodes with a non-zero input (messages or the gate's
        ``alpha_prev``); in sigma-delta mode previously active nodes that were not updated
        hold their state and outputs and keep their slots in the active-set cap."""
        be, p_model = self.backend, self.model
        cfg = p_model.cfg
        n, d, c = self.n_nodes, self.d, self.c
        w_h, b_h, theta, gamma, temperature = self.step_args
        sd = be.sigma_delta
        if not sd:
            inf.xin[:] = 0.0
        inf.xin[idx] = x
        xn = inf.xin.reshape(n, c)
        touched = np.unique(idx // c)
        cand = touched[(xn[touched] != 0).any(1)]
        prev = inf.prev
        pvalid = prev.valid[0].cpu().numpy()
        pids = prev.ids[0].cpu().numpy()
        slot_of = np.full(n, -1, dtype=np.int64)
        slot_of[pids[pvalid]] = np.nonzero(pvalid)[0]
        held = np.setdiff1d(pids[pvalid], cand) if sd else np.zeros(0, dtype=np.int64)
        dev = self.device
        cand_t = torch.from_numpy(cand).to(dev)
        htilde = torch.from_numpy(xn[cand, :d]).to(dev, torch.float32) + b_h
        a_prev = torch.from_numpy(xn[cand, d]).to(dev, torch.float32)
        norm = torch.linalg.vector_norm(htilde, dim=-1)
        alpha = torch.sigmoid((a_prev + gamma * norm - theta[cand_t]) / temperature)
        cobj = Candidates(
            batch=torch.zeros_like(cand_t),
            node=cand_t,
            htilde=htilde,
            alpha=alpha,
            prev_row=torch.from_numpy(slot_of[cand]).to(dev),
            n_batch=1,
        )
        saved = be.ledger
        be.ledger = None  # inhibition and the update are on-chip neuron work
        try:
            a_inh = TorchBackend.inhibit(be, cobj, self.graph, strength=cfg.inhibition_strength)
        finally:
            be.ledger = saved
        cap = cfg.k_active - int(held.size)
        if cap >= 1:
            ids, row, valid = TorchBackend.select(
                be,
                cobj.batch,
                cobj.node,
                a_inh,
                1,
                n,
                cap=cap,
                eps=cfg.eps_active,
                method=cfg.selection,
            )
        else:
            ids = torch.zeros(1, 1, dtype=torch.int64, device=dev)
            row = torch.full_like(ids, -1)
            valid = torch.zeros_like(ids, dtype=torch.bool)
        be.ledger = None
        try:
            new = TorchBackend.update(
                be, cobj, a_inh, prev, ids, row, valid, p_model.ln.weight, p_model.ln.bias
            )
        finally:
            be.ledger = saved
        self._exchange(inf, cand, new.ids[0][new.valid[0]].cpu().numpy())
        g = new.alpha.unsqueeze(-1) * (new.h @ w_h.T)
        y = np.zeros(self.n_neurons, dtype=np.float64)
        y += self.emit(inf, new, g)
        state = new
        if held.size:  # sigma-delta: held nodes keep their slots, state and outputs
            hs = torch.from_numpy(slot_of[held]).to(dev)
            keep = ActiveState(
                ids=prev.ids[:, hs],
                valid=prev.valid[:, hs],
                alpha=prev.alpha[:, hs],
                h=prev.h[:, hs],
            )
            both = [new, keep]
            state = ActiveState(
                ids=torch.cat([s.ids for s in both], 1),
                valid=torch.cat([s.valid for s in both], 1),
                alpha=torch.cat([s.alpha for s in both], 1),
                h=torch.cat([s.h for s in both], 1),
            )
            hcomp = (held[:, None] * c + np.arange(c)).ravel()
            y[hcomp] = inf.yout[hcomp]
        inf.yout = y
        inf.records[t] = _StepRecord(cobj, a_inh, ids, row, valid, state)
        inf.prev = state
        return y[idx]

    # ------------------------------------------------------------------ running a batch
    def _ledger(self, run: _BatchRun, ledger: CostLedger) -> dict[str, Any]:
        counts = nm.EventCounts()
        for rep in run.runs:
            for f in (
                "synops",
                "neuron_updates_active",
                "neuron_updates_idle",
                "events",
                "intra_tile_spikes",
                "inter_tile_packets",
                "hops_ew",
                "hops_ns",
                "chip_hops",
                "barriers",
                "steps",
                "sd_events_plain",
                "sd_events_saved",
            ):
                setattr(counts, f, getattr(counts, f) + getattr(rep.counts, f))
            counts.max_link_load = max(counts.max_link_load, rep.counts.max_link_load)
        ledger.op("chip")
        for ev, (_, field_name) in _CHIP_EVENTS.items():
            ledger.add(ev, getattr(counts, field_name))
        ledger.op("projection").add("nm_projection_mac", run.proj_macs)
        if self.split > 1:
            ledger.op("exchange")
            for k, (ev, _, _) in _EXCHANGE.items():
                ledger.add(ev, run.exchange[k])
        ledger.op("static").add("nm_static", self.topology.n_chips * sum(run.latency_ps))
        return counts.to_dict()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, Report]:
        be = self.backend
        x = x.to(self.device)
        ledger = CostLedger(self.table)
        run = _BatchRun(self)
        be.ledger, be._run = ledger, run
        t0 = time.perf_counter()
        try:
            out = self.model(x, backend=be, graph=self.graph)
        finally:
            be.ledger, be._run = None, None
        wall = time.perf_counter() - t0
        logits = out.logits
        counts = self._ledger(run, ledger)
        ledger.op("input").add("dram_word_32b", x.numel())
        per_step = [float(f) for f in out.active_fraction_per_step]
        lat_s = np.asarray(run.latency_ps, dtype=np.float64) * 1e-12
        batch = nm.BatchReport(run.runs)
        by_event = ledger.energy_by_event()
        breakdown = {
            k: math.fsum(by_event.get(e, 0.0) for e in evs) for k, evs in _BREAKDOWN.items()
        }
        breakdown["host"] = math.fsum(v for e, v in by_event.items() if not e.startswith("nm_"))
        e_syn = self.backend.profile.energy.synop
        e_x = {k: self.table.events[ev].value for k, (ev, _, _) in _EXCHANGE.items()}
        dyn_per = [
            math.fsum(v for k, v in r.energy.terms.items() if k in _DYNAMIC_TERMS)
            + macs * e_syn
            + math.fsum(xc[k] * e_x[k] for k in _EXCHANGE)
            for r, macs, xc in zip(run.runs, run.proj_macs_per, run.exchange_per, strict=True)
        ]
        split = {
            "dynamic": math.fsum(breakdown[k] for k in _DYNAMIC_BREAKDOWN),
            "per_step": breakdown["barrier"],
            "static": breakdown["static"],
            "host": breakdown["host"],
        }
        nb = batch.neurobench()
        nb["eff_macs_projection"] = run.proj_macs / max(1, len(run.runs))
        metrics: dict[str, Any] = {
            "preset": self.backend.profile.name,
            "mode": be.mode,
            "payload_bits": self.bits,
            "payload_scale": self.scale if self.bits is not None else None,
            "payload_scales": self.chan_scale.tolist() if self.bits is not None else None,
            "sigma_delta": be.sigma_delta,
            "idle_policy": be.idle_policy,
            "latency_per_inference_s": lat_s.tolist(),
            "latency_stats_s": summary_stats(lat_s),
            "chip_latency_per_inference_s": [r.latency_ps * 1e-12 for r in run.runs],
            "energy_j": ledger.energy_j(),
            "energy_j_per_inference": ledger.energy_j() / max(1, len(run.runs)),
            "energy_breakdown_j": breakdown,
            "energy_split_j": split,
            "dynamic_energy_per_inference_j": [v * 1e-12 for v in dyn_per],
            "event_counts": counts,
            "projection_macs": run.proj_macs,
            "exchange_counts": dict(run.exchange),
            "neurobench": nb,
            "sigma_delta_events": {
                "plain": counts["sd_events_plain"],
                "saved": counts["sd_events_saved"],
                "saved_fraction": counts["sd_events_saved"] / counts["sd_events_plain"]
                if counts["sd_events_plain"]
                else 0.0,
            },
            "mapping": {
                "nodes_per_core": self.nodes_per_core,
                "node_split": self.split,
                "cores_used": int(self.network.cores_used.size),
                "n_chips": self.topology.n_chips,
                "neurons": self.n_neurons,
                "synapses": int(self.network.synapses.nnz),
            },
            "trace_hashes": [r.trace_hash for r in run.runs],
            "wall_time_s": wall,
        }
        if be.reference:
            metrics["reference"] = self._compare(x, logits)
        report = Report(
            backend=be.name,
            n_samples=int(x.shape[0]),
            active_fraction=float(sum(per_step[1:]) / max(1, len(per_step) - 1)),
            active_fraction_per_step=per_step,
            ledger=ledger,
            latency_s=float(lat_s.sum()),
            metrics=metrics,
        )
        return logits, report

    def _compare(self, x: torch.Tensor, logits: torch.Tensor) -> dict[str, float]:
        """Agreement with the torch reference on the same batch."""
        ref = self.model(x, backend=TorchBackend(device=self.device), graph=self.graph).logits
        diff = (logits - ref).abs().amax(1)
        scale = ref.abs().amax(1).clamp_min(torch.finfo(ref.dtype).tiny)
        return {
            "max_rel_logit_error": float((diff / scale).max()) if len(x) else 0.0,
            "max_abs_logit_error": float(diff.max()) if len(x) else 0.0,
            "prediction_agreement": float((logits.argmax(1) == ref.argmax(1)).float().mean())
            if len(x)
            else 1.0,
        }
