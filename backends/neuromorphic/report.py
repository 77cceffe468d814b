"""The neuromorphic target's figures in ``Report.details`` (plain numbers, JSON-ready).

=============================  ===========================================================
key                            what
=============================  ===========================================================
preset, mode, payload_bits,    the coding (``payload_scales``: per-channel LSBs, d state
payload_scale(s), sigma_delta,   channels then the gate; None with exact payloads)
sd_threshold, idle_policy
latency_stats_s                mean, std, min, p50, p95, p99, max of the modelled latency
latency_parts_s                per inference: chip (simulated), projection, select, exchange
chip_latency_per_inference_s   the simulated chip part alone
energy_breakdown_j             by term; sums to the ledger's total (:mod:`.cost`)
energy_split_j                 dynamic / per_step / static / host
dynamic_energy_per_inference_j the dynamic chip energy of each inference
event_counts                   the simulator's counted events (summed over the batch)
projection_macs                W_h MACs of the emitting nodes
select_counts, exchange_counts traffic of the k-winners reductions / split-node exchange
select_rounds                  reduction rounds per inference
neurobench                     NeuroBench metrics per inference (+ the projection's MACs)
sigma_delta_events             events a plain coder would send, and the saved ones
mapping                        nodes per core, node split, cores, chips, neurons, synapses
trace_hashes                   SHA-256 of each inference's event trace
=============================  ===========================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.backends.cost import CostLedger
from rsgn.backends.neuromorphic import cost
from rsgn.backends.neuromorphic.traffic import COUNTS
from rsgn.neuromorphic.report import summary_stats

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.backends.neuromorphic.program import Inference, NeuromorphicProgram

_SUMMED = (
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
)


def event_counts(infs: list[Inference]) -> dict[str, int]:
    """The simulator's counted events summed over the batch (max link load: the largest)."""
    total = nm.EventCounts()
    for inf in infs:
        for f in _SUMMED:
            setattr(total, f, getattr(total, f) + getattr(inf.run.counts, f))
        total.max_link_load = max(total.max_link_load, inf.run.counts.max_link_load)
    return total.to_dict()


def _summed(infs: list[Inference], kind: str) -> dict[str, int]:
    return {k: sum(getattr(inf.traffic, kind).counts[k] for inf in infs) for k in COUNTS}


def details(
    prog: NeuromorphicProgram,
    infs: list[Inference],
    ledger: CostLedger,
    dynamic_per_inference: list[float],
    latency_s: list[float],
) -> dict[str, Any]:
    """The details of one batch (module docstring)."""
    opts, coding, layout = prog.options, prog.coding, prog.layout
    counts = event_counts(infs)
    parts = cost.breakdown(ledger)
    nb = nm.BatchReport([inf.run for inf in infs]).neurobench()
    macs = sum(inf.traffic.projection_macs for inf in infs)
    nb["eff_macs_projection"] = macs / max(1, len(infs))
    plain, saved = counts["sd_events_plain"], counts["sd_events_saved"]
    scales = prog.payload_scales
    return {
        "preset": prog.profile.name,
        "mode": opts.mode,
        "payload_bits": coding.bits,
        "payload_scale": None if scales is None else float(scales.max()),
        "payload_scales": None if scales is None else scales.tolist(),
        "sigma_delta": coding.sigma_delta,
        "sd_threshold": coding.sd_threshold,
        "idle_policy": opts.idle_policy,
        "latency_stats_s": summary_stats(np.asarray(latency_s)),
        "latency_parts_s": {
            "chip": [inf.run.latency_ps * 1e-12 for inf in infs],
            "projection": [inf.traffic.projection_ps * 1e-12 for inf in infs],
            "select": [inf.traffic.select.time_ps * 1e-12 for inf in infs],
            "exchange": [inf.traffic.exchange.time_ps * 1e-12 for inf in infs],
        },
        "chip_latency_per_inference_s": [inf.run.latency_ps * 1e-12 for inf in infs],
        "energy_breakdown_j": parts,
        "energy_split_j": cost.split(parts),
        "dynamic_energy_per_inference_j": dynamic_per_inference,
        "event_counts": counts,
        "projection_macs": macs,
        "select_counts": _summed(infs, "select"),
        "select_rounds": [sum(s.rounds for s in inf.log.steps.values()) for inf in infs],
        "exchange_counts": _summed(infs, "exchange"),
        "neurobench": nb,
        "sigma_delta_events": {
            "plain": plain,
            "saved": saved,
            "saved_fraction": saved / plain if plain else 0.0,
        },
        "mapping": {
            "nodes_per_core": layout.nodes_per_core,
            "node_split": layout.split,
            "cores_used": layout.cores_used,
            "n_chips": layout.topology.n_chips,
            "root_core": layout.root,
            "neurons": prog.synapses.n_neurons,
            "synapses": int(prog.synapses.src.size),
        },
        "trace_hashes": [inf.run.trace_hash for inf in infs],
    }
