r"""The neuromorphic cost model: the simulator's counted events -> ledger entries and breakdown.

Everything runs on the chip; the host only moves the input tokens in and the logits out, over
the host interface (``nm_host_io`` per 32-bit value). Energy of an inference (every term a count
of the simulator, :mod:`rsgn.neuromorphic.report`, times a per-event constant of the preset)::

    E = sum over traffic classes of
          packets (e_message_out + e_tile_spike + e_message_in) + hops x e_hop
        + host values x e_host_io
        + synaptic ops x e_synop + graded synaptic ops (MACs) x e_graded_synop
        + neuron-program instructions x e_neuron_op
      + compartment updates (e_active, e_idle: the chip program's are accesses, e_idle)
      + output events x e_spike_out + barriers (tokens' packets and hops)
      + P_static n_chips latency                                (nm_static, per chip-ps)

The ledger charges each traffic class to the op of the shared vocabulary
(``rsgn.plots.OP_ORDER``, :data:`CLASS_OPS`); :func:`breakdown` splits the energy into the parts
the study reports (:data:`PARTS`); both sum to the ledger's total.
"""

from __future__ import annotations

import math

from rsgn import neuromorphic as nm
from rsgn.backends.cost import Constant, CostLedger, EnergyTable

MODEL = (
    "counted chip events x the preset's per-event energies + static power x modelled latency "
    "(the whole inference on the chip; the host moves only the input and the logits)"
)

KINDS = {
    "nm_synop": ("synop", "synaptic op, binary payload"),
    "nm_graded_synop": ("graded_synop", "synaptic op with a graded payload: one MAC"),
    "nm_neuron_update_active": ("neuron_update_active", "compartment update with input"),
    "nm_neuron_update_idle": ("neuron_update_idle", "compartment update without input / access"),
    "nm_neuron_op": ("neuron_op", "neuron-program (microcode) instruction"),
    "nm_spike_out": ("spike_out", "output event generated"),
    "nm_message_out": ("message_out", "packet sent by a core"),
    "nm_message_in": ("message_in", "packet received by a core"),
    "nm_tile_spike": ("tile_spike", "packet through a router"),
    "nm_hop_ew": ("hop_ew", "packet per east-west hop"),
    "nm_hop_ns": ("hop_ns", "packet per north-south hop"),
    "nm_chip_hop": ("chip_hop", "packet per chip-to-chip hop"),
    "nm_host_io": ("host_io", "32-bit value across the host interface"),
    "nm_barrier": ("barrier", "barrier synchronisation"),
}
"""ledger event -> (preset energy constant, scope)."""

CLASS_OPS = {
    "io_in": "input",
    "front_end": "encode",
    "ignite": "ignite",
    "ignite_select": "ignite",
    "init": "attend",
    "spikes": "propagate",
    "project": "propagate",
    "threshold": "update",
    "inhibit": "inhibit",
    "select": "select",
    "exchange": "update",
    "update": "update",
    "updates": "update",
    "readout": "readout",
    "io_out": "readout",
    "barrier": "sync",
    "static": "static",
}
"""traffic class of the simulator -> op of the shared vocabulary."""

_COMPUTE_PART = {
    "io_in": "front_end",
    "front_end": "front_end",
    "ignite": "ignition",
    "ignite_select": "selection",
    "select": "selection",
    "init": "initial_state",
    "project": "projection",
    "readout": "readout",
    "io_out": "readout",
}
PARTS = (
    "synaptic",
    "neuron_program",
    "projection",
    "selection",
    "noc",
    "barrier",
    "static",
    "host_io",
    "front_end",
    "ignition",
    "initial_state",
    "readout",
)
"""The breakdown: spike delivery (``synaptic``), compartment updates and the node program's
instructions (``neuron_program``: threshold, inhibition, update, split exchange, spike
generation), the W_h MACs (``projection``), the selection's instructions (``selection``),
every packet's send, receive, router and link energy (``noc``), the barrier, static power, the
host interface (``host_io``), and the compute of the front end, the ignition distances, the
initial states and the readout."""
_NOC_TERMS = ("message_out", "message_in", "tile_spikes", "hops_ew", "hops_ns", "chip_hops")


def energy_table(profile: nm.HardwareProfile) -> EnergyTable:
    """The preset's per-event energies as ledger events (prefixed ``nm_``), with provenance."""
    events: dict[str, Constant] = {}
    for ev, (attr, scope) in KINDS.items():
        c = profile.constants[f"energy.{attr}"]
        events[ev] = Constant(
            float(c.value),
            c.unit,
            f"preset {profile.name} energy.{attr}: {c.source} [evidence: {c.evidence}]",
            c.evidence,
            scope,
        )
    c = profile.constants["energy.static_power"]
    events["nm_static"] = Constant(
        float(c.value) * 1e-3,
        "pJ",
        f"preset {profile.name} energy.static_power {c.value} mW x 1 ps (1 mW x 1 ps = 1e-3 pJ): "
        f"{c.source} [evidence: {c.evidence}]",
        "derived",
        "per chip per ps of modelled latency",
    )
    return EnergyTable(name=profile.name, events=events, meta={"chip_preset": profile.name})


def _traffic(ledger: CostLedger, op: str, tc: nm.TrafficCounts, cores: bool = True) -> None:
    ledger.op(op)
    if cores:
        ledger.add("nm_message_out", tc.packets - tc.host_in)
        ledger.add("nm_message_in", tc.packets - tc.host_out)
    ledger.add("nm_tile_spike", tc.packets)
    ledger.add("nm_hop_ew", tc.hops_ew)
    ledger.add("nm_hop_ns", tc.hops_ns)
    ledger.add("nm_chip_hop", tc.chip_hops)
    ledger.add("nm_host_io", tc.host_in + tc.host_out)
    ledger.add("nm_neuron_op", tc.neuron_ops + tc.rx_ops)
    ledger.add("nm_synop", tc.synops)
    ledger.add("nm_graded_synop", tc.graded_synops)


def charge_run(ledger: CostLedger, run: nm.RunReport) -> None:
    """One inference's counted events, each class charged to its op (:data:`CLASS_OPS`)."""
    c = run.counts
    ledger.op("update").add("nm_neuron_update_active", c.neuron_updates_active)
    ledger.add("nm_neuron_update_idle", c.neuron_updates_idle)
    _traffic(ledger, "propagate", c.spike_traffic)
    ledger.add("nm_synop", c.synops)
    ledger.add("nm_graded_synop", c.graded_synops)
    ledger.add("nm_spike_out", c.events)
    for name, tc in sorted(c.phases.items()):
        _traffic(ledger, CLASS_OPS.get(name, "update"), tc)
    _traffic(ledger, "sync", c.barrier_traffic, cores=False)
    ledger.add("nm_barrier", c.barriers)
    ledger.op("static").add("nm_static", run.n_chips * run.latency_ps)


def breakdown(runs: list[nm.RunReport]) -> dict[str, float]:
    """Energy (J) by part (:data:`PARTS`) over ``runs``; sums to their total energy."""
    out = dict.fromkeys(PARTS, 0.0)
    for run in runs:
        for cls, terms in run.energy.by_class_terms.items():
            for term, pj in terms.items():
                out[_part(cls, term)] += pj * 1e-12
    return out


def _part(cls: str, term: str) -> str:
    if cls in ("barrier", "static"):
        return cls
    if term == "host_io":
        return "host_io"
    if term in _NOC_TERMS:
        return "noc"
    if cls == "spikes":
        return "neuron_program" if term == "spike_out" else "synaptic"
    return _COMPUTE_PART.get(cls, "neuron_program")


def split(parts: dict[str, float]) -> dict[str, float]:
    """dynamic (activity-driven chip work) / per_step (barrier) / static / host_io (J)."""
    return {
        "dynamic": math.fsum(
            v for k, v in parts.items() if k not in ("barrier", "static", "host_io")
        ),
        "per_step": parts["barrier"],
        "static": parts["static"],
        "host_io": parts["host_io"],
    }


def dynamic_j(run: nm.RunReport) -> float:
    """The activity-driven chip energy (J) of one inference."""
    return split(breakdown([run]))["dynamic"]
