"""Run reports: event counts, energy with its breakdown, latency, NeuroBench metrics.

Energy (pJ) is counted events times per-event energy, plus static power times latency::

    E = synops * e_synop
      + updates_active * e_update_active + updates_idle * e_update_idle
      + (intra_tile_spikes + inter_tile_packets) * e_tile_spike
      + hops_ew * e_hop_ew + hops_ns * e_hop_ns + chip_hops * e_chip_hop
      + barriers * e_barrier
      + P_static[mW] * n_chips * latency[ps] * 1e-3

Each term is one entry of :class:`EnergyBreakdown`; the total is their ``math.fsum``, so the
breakdown sums to the total exactly.
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
    "EnergyBreakdown",
    "NeuroBenchMetrics",
    "RunReport",
    "BatchReport",
    "compute_energy",
    "ENERGY_TERMS",
]

ENERGY_TERMS = (
    "synops",
    "neuron_update_active",
    "neuron_update_idle",
    "tile_spikes",
    "hops_ew",
    "hops_ns",
    "chip_hops",
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
class EventCounts:
    """Counted events of one run (integers).

    Attributes
    ----------
    synops : synaptic operations (one per synapse reached by an event)
    neuron_updates_active : updates of neurons that received input (or external input)
    neuron_updates_idle : updates of neurons that received nothing (policy-dependent)
    events : neuron output events (spikes or graded messages)
    intra_tile_spikes : packets whose source and destination core share a tile (0 hops)
    inter_tile_packets : packets that leave their tile
    hops_ew, hops_ns, chip_hops : link traversals by kind (sum = Manhattan distances)
    barriers : barrier synchronisations (one per step in sync mode)
    steps : algorithmic time steps
    sd_events_plain : events a plain graded coder would have sent (sigma-delta runs)
    sd_events_saved : ``sd_events_plain - events of graded neurons`` (sigma-delta runs)
    max_link_load : largest per-step packet count on one directed link
    """

    synops: int = 0
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
    max_link_load: int = 0

    @property
    def packets(self) -> int:
        """``intra_tile_spikes + inter_tile_packets``."""
        return self.intra_tile_spikes + self.inter_tile_packets

    @property
    def hops(self) -> int:
        """``hops_ew + hops_ns + chip_hops``."""
        return self.hops_ew + self.hops_ns + self.chip_hops

    def to_dict(self) -> dict[str, int]:
        d = dataclasses.asdict(self)
        d.update(packets=self.packets, hops=self.hops)
        return d


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy terms in pJ (keys :data:`ENERGY_TERMS`) and their exact sum ``total_pj``."""

    terms: dict[str, float]
    total_pj: float

    @property
    def dynamic_pj(self) -> float:
        """Everything but static energy (``math.fsum``)."""
        return math.fsum(v for k, v in self.terms.items() if k != "static")

    def to_dict(self) -> dict[str, Any]:
        return {"total_pj": self.total_pj, "dynamic_pj": self.dynamic_pj, **self.terms}


def compute_energy(
    counts: EventCounts, profile: HardwareProfile, latency_ps: int, n_chips: int
) -> EnergyBreakdown:
    """Energy of a run from its counts (see module docstring for the formula)."""
    e = profile.energy
    terms = {
        "synops": counts.synops * e.synop,
        "neuron_update_active": counts.neuron_updates_active * e.neuron_update_active,
        "neuron_update_idle": counts.neuron_updates_idle * e.neuron_update_idle,
        "tile_spikes": counts.packets * e.tile_spike,
        "hops_ew": counts.hops_ew * e.hop_ew,
        "hops_ns": counts.hops_ns * e.hop_ns,
        "chip_hops": counts.chip_hops * e.chip_hop,
        "barrier": counts.barriers * e.barrier,
        "static": e.static_power_mw * n_chips * latency_ps * 1e-3,
    }
    return EnergyBreakdown(terms, math.fsum(terms[k] for k in ENERGY_TERMS))


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
