"""The neuromorphic target's figures in ``Report.details`` (plain numbers, JSON-ready).

=============================  ===========================================================
key                            what
=============================  ===========================================================
preset, mode, payload_bits,    the coding (``payload_scales``: per-channel LSBs, d state
payload_scale(s), sigma_delta,   channels then the gate; None with exact payloads), the
sd_threshold, idle_policy,       selection (exact over the NoC, or local per-core k-WTA) and
selection, select_bits, noc      the network timing mode
latency_stats_s                mean, std, min, p50, p95, p99, max of the modelled latency
step_latency_s                 mean simulated time of each simulator step (ignition, first
                               emission, then the propagation steps; the last has the readout)
energy_breakdown_j             by part (:data:`.cost.PARTS`); sums to the ledger's total
energy_split_j                 dynamic / per_step (barrier) / static / host_io
energy_by_class_j              by traffic class of the simulator (spikes, select, ...)
dynamic_energy_per_inference_j the dynamic chip energy of each inference
sim_events                     SimPy events the timing pass scheduled (all inferences)
noc_messages                   packets that crossed the network (left their tile), all classes
flows                          flows (trains or packets) the network simulated
event_counts                   the simulator's counted events (summed over the batch)
packets_by_class               packets sent per traffic class
select_rounds                  reduction rounds per inference (ignition + every step)
neurobench                     NeuroBench metrics per inference (module :mod:`.neurobench`)
sigma_delta_events             events a plain coder would send, and the saved ones
mapping                        nodes per core, node split, cores, chips, neurons, synapses
trace_hashes                   SHA-256 of each inference's event trace
=============================  ===========================================================
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.backends.neuromorphic import cost
from rsgn.backends.neuromorphic.neurobench import metrics
from rsgn.neuromorphic.report import summary_stats

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.backends.neuromorphic.program import Inference, NeuromorphicProgram


def event_counts(infs: list[Inference]) -> nm.EventCounts:
    """The simulator's counted events summed over the batch."""
    total = nm.EventCounts()
    for inf in infs:
        total.merge(inf.run.counts)
    return total


def details(prog: NeuromorphicProgram, infs: list[Inference]) -> dict[str, Any]:
    """The details of one batch (module docstring)."""
    opts, coding, layout = prog.options, prog.coding, prog.layout
    counts = event_counts(infs)
    runs = [inf.run for inf in infs]
    parts = cost.breakdown(runs)
    by_class: dict[str, float] = {}
    for r in runs:
        for k, v in r.energy.by_class.items():
            by_class[k] = by_class.get(k, 0.0) + v * 1e-12
    plain, saved = counts.sd_events_plain, counts.sd_events_saved
    scales = prog.payload_scales
    lat = np.array([inf.run.latency_ps for inf in infs], dtype=np.float64) * 1e-12
    steps = np.array([inf.run.step_latency_ps for inf in infs], dtype=np.float64) * 1e-12
    packets = {"spikes": counts.packets} | {k: v.packets for k, v in counts.phases.items()}
    return {
        "preset": prog.profile.name,
        "mode": opts.mode,
        "payload_bits": coding.bits,
        "payload_scale": None if scales is None else float(scales.max()),
        "payload_scales": None if scales is None else scales.tolist(),
        "sigma_delta": coding.sigma_delta,
        "sd_threshold": coding.sd_threshold,
        "idle_policy": opts.idle_policy,
        "selection": opts.selection,
        "select_bits": opts.select_bits,
        "noc": opts.noc,
        "latency_stats_s": summary_stats(lat),
        "step_latency_s": steps.mean(0).tolist() if steps.size else [],
        "energy_breakdown_j": parts,
        "energy_split_j": cost.split(parts),
        "energy_by_class_j": by_class,
        "dynamic_energy_per_inference_j": [cost.dynamic_j(r) for r in runs],
        "sim_events": counts.sim_events,
        "noc_messages": counts.noc_messages,
        "flows": counts.flows,
        "event_counts": counts.to_dict(),
        "packets_by_class": packets,
        "select_rounds": [
            inf.log.ignition_rounds + sum(s.rounds for s in inf.log.steps.values()) for inf in infs
        ],
        "neurobench": metrics(prog, infs),
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
        "energy_check_j": math.fsum(parts.values()),
    }
