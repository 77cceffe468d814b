"""Run reports: event counts, energy with its breakdown, latency, NeuroBench metrics.

Energy (pJ) is counted events times per-event energy, plus static power times latency. Traffic
is counted per class: ``spikes`` (the neurons' output events) and each phase name a model
declares (:meth:`~rsgn.neuromorphic.neurons.StepContext.phase`), plus the barrier's tokens::

    E = synops e_synop + graded_synops e_graded_synop                    (spike delivery)
      + updates_active e_active + updates_idle e_idle
      + events e_spike_out
      + sum over classes [ packets (e_message_out + e_tile_spike + e_message_in)
                           + hops_ew e_ew + hops_ns e_ns + chip_hops e_chip
                           + (host_in + host_out) e_host_io
                           + (neuron_ops + rx_ops) e_neuron_op
                           + declared synops e_synop + declared graded_synops e_graded_synop ]
      + barrier tokens: packets e_tile_spike + hops (e_ew, e_ns, e_chip) ; barriers e_barrier
      + P_static[mW] * n_chips * latency[ps] * 1e-3

A packet from the host pays ``e_host_io`` instead of a core's ``e_message_out``, a packet to
the host ``e_host_io`` instead of ``e_message_in``. Each term is one
entry of :class:`EnergyBreakdown` (by kind) and of ``by_class`` (by traffic class); both sum to
the total exactly (``math.fsum``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .profile import HardwareProfile

__all__ = [
    "EventCounts",
    "TrafficCounts",
    "EnergyBreakdown",
    "NeuroBenchMetrics",
    "RunReport",
    "BatchReport",
    "compute_energy",
    "ENERGY_TERMS",
]

ENERGY_TERMS = (
    "synops",
    "graded_synops",
    "neuron_update_active",
    "neuron_update_idle",
    "neuron_ops",
    "spike_out",
    "message_out",
    "message_in",
    "tile_spikes",
    "hops_ew",
    "hops_ns",
    "chip_hops",
    "host_io",
    "barrier",
    "static",
)


def summary_stats(v: np.ndarray, suffix: str = "") -> dict[str, float]:
    """Mean, std, min, p50, p95, p99 and max of ``v`` (keys end in ``suffix``); {} if empty."""
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return {}
    vals = {
        "mean": v.mean(),
        "std": v.std(),
        "min": v.min(),
        "p50": np.percentile(v, 50),
        "p95": np.percentile(v, 95),
        "p99": np.percentile(v, 99),
        "max": v.max(),
    }
    return {k + suffix: float(x) for k, x in vals.items()}


@dataclass
class TrafficCounts:
    """Counted traffic and declared compute of one class (integers).

    Attributes
    ----------
    packets : packets sent (core to core, host included)
    intra_tile : packets whose source and destination share a tile (0 hops)
    hops_ew, hops_ns, chip_hops : link traversals by kind
    host_in, host_out : packets from / to the host (across the host interface)
    rx_ops : ``neuron_op`` instructions receivers spent on the packets
    neuron_ops, synops, graded_synops : compute declared by the class's phases
    """

    packets: int = 0
    intra_tile: int = 0
    hops_ew: int = 0
    hops_ns: int = 0
    chip_hops: int = 0
    host_in: int = 0
    host_out: int = 0
    rx_ops: int = 0
    neuron_ops: int = 0
    synops: int = 0
    graded_synops: int = 0

    @property
    def hops(self) -> int:
        return self.hops_ew + self.hops_ns + self.chip_hops

    @property
    def noc_packets(self) -> int:
        """Packets that crossed at least one link (left their tile, or the host interface)."""
        return self.packets - self.intra_tile

    def add(self, other: TrafficCounts) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_dict(self) -> dict[str, int]:
        d = dataclasses.asdict(self)
        d.update(hops=self.hops, noc_packets=self.noc_packets)
        return d


@dataclass
class EventCounts:
    """Counted events of one run (integers).

    Attributes
    ----------
    synops : synaptic operations of binary-payload events (one per synapse reached)
    graded_synops : synaptic operations of graded-payload events (multiply-accumulates)
    neuron_updates_active : updates of neurons with input (or that had to update)
    neuron_updates_idle : updates of neurons without input (policy-dependent), and the
        compartment accesses of models that declare their compute
    events : neuron output events (spikes or graded messages)
    intra_tile_spikes, inter_tile_packets : spike packets inside / leaving their tile
    hops_ew, hops_ns, chip_hops : link traversals of spike packets by kind
    phases : traffic and compute per declared phase class
    barriers : barrier synchronisations; barrier_traffic : their tokens
    steps : algorithmic time steps
    sd_events_plain, sd_events_saved : sigma-delta coding (events a plain coder would send,
        and the difference)
    sim_events : SimPy events the timing pass scheduled
    flows : flows (trains, or packets in packet mode) the network simulated
    """

    synops: int = 0
    graded_synops: int = 0
    neuron_updates_active: int = 0
    neuron_updates_idle: int = 0
    events: int = 0
    intra_tile_spikes: int = 0
    inter_tile_packets: int = 0
    hops_ew: int = 0
    hops_ns: int = 0
    chip_hops: int = 0
    barriers: int = 0
    steps: int = 0
    sd_events_plain: int = 0
    sd_events_saved: int = 0
    sim_events: int = 0
    flows: int = 0
    phases: dict[str, TrafficCounts] = field(default_factory=dict)
    barrier_traffic: TrafficCounts = field(default_factory=TrafficCounts)

    @property
    def packets(self) -> int:
        """Spike packets: ``intra_tile_spikes + inter_tile_packets``."""
        return self.intra_tile_spikes + self.inter_tile_packets

    @property
    def hops(self) -> int:
        """Spike packets' link traversals ``hops_ew + hops_ns + chip_hops``."""
        return self.hops_ew + self.hops_ns + self.chip_hops

    @property
    def spike_traffic(self) -> TrafficCounts:
        """The spike packets as a :class:`TrafficCounts`."""
        return TrafficCounts(
            packets=self.packets,
            intra_tile=self.intra_tile_spikes,
            hops_ew=self.hops_ew,
            hops_ns=self.hops_ns,
            chip_hops=self.chip_hops,
        )

    def phase(self, name: str) -> TrafficCounts:
        """The counts of phase class ``name`` (created empty)."""
        if name not in self.phases:
            self.phases[name] = TrafficCounts()
        return self.phases[name]

    @property
    def noc_messages(self) -> int:
        """Packets that crossed the network (left their tile), every class but the barrier."""
        return self.inter_tile_packets + sum(p.noc_packets for p in self.phases.values())

    def to_dict(self) -> dict[str, Any]:
        d = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("phases", "barrier_traffic")
        }
        d.update(packets=self.packets, hops=self.hops, noc_messages=self.noc_messages)
        d["phases"] = {k: v.to_dict() for k, v in sorted(self.phases.items())}
        d["barrier_traffic"] = self.barrier_traffic.to_dict()
        return d

    def merge(self, other: EventCounts) -> None:
        """Add ``other``'s counts into these."""
        for f in dataclasses.fields(self):
            if f.name == "phases":
                for k, v in other.phases.items():
                    self.phase(k).add(v)
            elif f.name == "barrier_traffic":
                self.barrier_traffic.add(other.barrier_traffic)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy terms in pJ by kind (keys :data:`ENERGY_TERMS`) and by traffic class
    (``updates``, ``spikes``, each phase name, ``barrier``, ``static``); both sum to
    ``total_pj``."""

    terms: dict[str, float]
    total_pj: float
    by_class: dict[str, float] = field(default_factory=dict)
    by_class_terms: dict[str, dict[str, float]] = field(default_factory=dict)
    """Class -> term -> pJ (the finest split; sums to the total)."""

    @property
    def dynamic_pj(self) -> float:
        """Everything but static energy (``math.fsum``)."""
        return math.fsum(v for k, v in self.terms.items() if k != "static")

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_pj": self.total_pj,
            "dynamic_pj": self.dynamic_pj,
            **self.terms,
            "by_class": dict(self.by_class),
            "by_class_terms": {k: dict(v) for k, v in self.by_class_terms.items()},
        }


def _traffic_terms(tc: TrafficCounts, e: Any, cores: bool = True) -> dict[str, float]:
    """Energy terms (pJ) of one class's traffic and declared compute (module docstring).
    Barrier tokens (``cores=False``) pay only the router and the links."""
    return {
        "synops": tc.synops * e.synop,
        "graded_synops": tc.graded_synops * e.graded_synop,
        "neuron_ops": (tc.neuron_ops + tc.rx_ops) * e.neuron_op,
        "message_out": (tc.packets - tc.host_in) * e.message_out if cores else 0.0,
        "message_in": (tc.packets - tc.host_out) * e.message_in if cores else 0.0,
        "tile_spikes": tc.packets * e.tile_spike,
        "hops_ew": tc.hops_ew * e.hop_ew,
        "hops_ns": tc.hops_ns * e.hop_ns,
        "chip_hops": tc.chip_hops * e.chip_hop,
        "host_io": (tc.host_in + tc.host_out) * e.host_io,
    }


def compute_energy(
    counts: EventCounts, profile: HardwareProfile, latency_ps: int, n_chips: int
) -> EnergyBreakdown:
    """Energy of a run from its counts (see module docstring for the formula)."""
    e = profile.energy
    terms = dict.fromkeys(ENERGY_TERMS, 0.0)
    by_class: dict[str, float] = {}
    fine: dict[str, dict[str, float]] = {}

    def add(cls: str, part: dict[str, float]) -> None:
        for k, v in part.items():
            terms[k] += v
        by_class[cls] = by_class.get(cls, 0.0) + math.fsum(part.values())
        fine[cls] = part

    add(
        "updates",
        {
            "neuron_update_active": counts.neuron_updates_active * e.neuron_update_active,
            "neuron_update_idle": counts.neuron_updates_idle * e.neuron_update_idle,
        },
    )
    spikes = _traffic_terms(counts.spike_traffic, e)
    spikes["synops"] = counts.synops * e.synop
    spikes["graded_synops"] = counts.graded_synops * e.graded_synop
    spikes["spike_out"] = counts.events * e.spike_out
    add("spikes", spikes)
    for name in sorted(counts.phases):
        add(name, _traffic_terms(counts.phases[name], e))
    bar = _traffic_terms(counts.barrier_traffic, e, cores=False)
    bar["barrier"] = counts.barriers * e.barrier
    add("barrier", bar)
    add("static", {"static": e.static_power_mw * n_chips * latency_ps * 1e-3})
    total = math.fsum(terms[k] for k in ENERGY_TERMS)
    return EnergyBreakdown(terms, total, by_class, fine)


@dataclass(frozen=True)
class NeuroBenchMetrics:
    """NeuroBench metrics of one inference (definitions of NeuroBench's docs and code).

    Attributes
    ----------
    dense_synops : float
        Ops without sparsity support: ``steps * sum over projections of n_src * n_dst``.
    eff_macs : float
        Events from graded neurons times their non-zero-weight fan-out (non-binary -> MAC).
    eff_acs : float
        Events from binary neurons times their non-zero-weight fan-out (binary -> AC).
    activation_sparsity : float
        Zero outputs / (N * steps); 0 = all active, 1 = all silent.
    connection_sparsity : float
        Zero weights / dense weights over projections (group pairs with synapses).
    footprint_bytes : int
        Bytes of weights, synapse index arrays (CSR ``indptr`` and ``dst``) and neuron state.
    """

    dense_synops: float
    eff_macs: float
    eff_acs: float
    activation_sparsity: float
    connection_sparsity: float
    footprint_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunReport:
    """Everything one inference produced.

    Attributes
    ----------
    counts : EventCounts
    energy : EnergyBreakdown
    latency_ps : int
        Time from the first injected event to the end of the last step.
    step_latency_ps : numpy.ndarray
        Per-step duration (sync: core phase + network phase + barrier, floored by
        ``min_step``; async: advance of the completion front).
    outputs : numpy.ndarray or None
        ``(steps, N)`` neuron outputs after each step's update (``record="outputs"``).
    final_output : numpy.ndarray
        Outputs after the last step.
    neurobench : NeuroBenchMetrics
    trace_hash : str
        SHA-256 over every step's events, payloads, per-core busy times and step times.
    profile : str
    n_chips, cores_used : int
    config : dict
    provenance_summary : dict
        Constants per evidence class of the profile.
    """

    counts: EventCounts
    energy: EnergyBreakdown
    latency_ps: int
    step_latency_ps: np.ndarray
    outputs: np.ndarray | None
    final_output: np.ndarray
    neurobench: NeuroBenchMetrics
    trace_hash: str
    profile: str
    n_chips: int
    cores_used: int
    config: dict[str, Any] = field(default_factory=dict)
    provenance_summary: dict[str, int] = field(default_factory=dict)

    @property
    def latency_ns(self) -> float:
        """``latency_ps / 1000``."""
        return self.latency_ps / 1000.0

    @property
    def energy_pj(self) -> float:
        """Total energy in pJ."""
        return self.energy.total_pj

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no output arrays)."""
        return {
            "profile": self.profile,
            "latency_ps": self.latency_ps,
            "steps": self.counts.steps,
            "step_latency_ps": [int(v) for v in self.step_latency_ps],
            "energy_pj": self.energy.to_dict(),
            "counts": self.counts.to_dict(),
            "neurobench": self.neurobench.to_dict(),
            "trace_hash": self.trace_hash,
            "n_chips": self.n_chips,
            "cores_used": self.cores_used,
            "config": self.config,
            "provenance_summary": self.provenance_summary,
        }


@dataclass
class BatchReport:
    """Reports of several inferences with latency and energy distributions."""

    reports: list[RunReport]

    @property
    def latencies_ps(self) -> np.ndarray:
        """Latency per inference (ps)."""
        return np.array([r.latency_ps for r in self.reports], dtype=np.int64)

    @property
    def energies_pj(self) -> np.ndarray:
        """Total energy per inference (pJ)."""
        return np.array([r.energy.total_pj for r in self.reports], dtype=np.float64)

    def latency_stats(self) -> dict[str, float]:
        """Mean, std, min, p50, p95, p99 and max latency per inference in ns."""
        return summary_stats(self.latencies_ps / 1000.0, suffix="_ns")

    def neurobench(self) -> dict[str, float]:
        """NeuroBench metrics averaged per sample (synaptic ops, activation sparsity)."""
        if not self.reports:
            return {}
        m = [r.neurobench for r in self.reports]
        return {
            "dense_synops": float(np.mean([x.dense_synops for x in m])),
            "eff_macs": float(np.mean([x.eff_macs for x in m])),
            "eff_acs": float(np.mean([x.eff_acs for x in m])),
            "activation_sparsity": float(np.mean([x.activation_sparsity for x in m])),
            "connection_sparsity": m[0].connection_sparsity,
            "footprint_bytes": m[0].footprint_bytes,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": len(self.reports),
            "latency": self.latency_stats(),
            "energy_pj_mean": float(self.energies_pj.mean()) if self.reports else 0.0,
            "neurobench": self.neurobench(),
            "runs": [r.to_dict() for r in self.reports],
        }
