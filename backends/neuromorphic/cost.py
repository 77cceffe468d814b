r"""The neuromorphic cost model: a run's counted events -> ledger entries, and its breakdown.

Energy of a batch (every term a counted event times a per-event constant of the preset, or of
the host's ``electronic_45nm`` table)::

    E = synops e_synop + packets e_tile + hops_ew e_ew + hops_ns e_ns
      + chip_hops e_chip + projection_macs e_synop                              (op propagate)
      + upd_active e_active + upd_idle e_idle                                   (op update)
      + exchange: packets e_tile + hops e_hop + ops e_synop (split nodes only)  (op update)
      + select: packets e_tile + hops e_hop + ops e_synop                       (op select)
      + barriers e_barrier                                                      (op sync)
      + P_static n_chips latency                       (nm_static, per chip-ps) (op static)
      + host events x electronic_45nm     (ops encode, ignite, attend, readout, input)

The ops are the vocabulary every target's ledger shares (``rsgn.plots.OP_ORDER``): messages and
the W_h projection are ``propagate``, the node program (soft threshold, inhibition, LayerNorm,
and the exchange a split node needs for it) is ``update``, the barrier ``sync``.

Where each part runs: the chip runs the whole propagation (messages, node program, payload
projection, the k-winners selection by global reductions, the split-node exchange); the host
runs the front end (token encoder, sparks, initial states), ignition over all nodes and the
readout, charged with the electronic cost model (:mod:`rsgn.backends.torch.cost`, the one
place its formulas live) and not timed.

Breakdown (``energy_breakdown_j``): synops, neuron_update_active, neuron_update_idle,
intra_tile_spikes, hops, barrier, projection, select, exchange, static, host; it sums to the
ledger's total. Split (``energy_split_j``): ``dynamic`` (activity-driven chip events: every
term but barrier and static), ``per_step`` (barriers), ``static`` (power x latency) and
``host``.
"""

from __future__ import annotations

import dataclasses
import math

from rsgn import neuromorphic as nm
from rsgn.backends.cost import Constant, CostLedger, EnergyTable, load_energy_table
from rsgn.backends.torch import cost as electronic
from rsgn.spec import ModelSpec

HOST_TABLE = electronic.TABLE_NAME
MODEL = (
    "counted chip events x the preset's per-event energies + static power x modelled latency "
    f"+ host events x {HOST_TABLE}"
)

CHIP_EVENTS = {
    "nm_synop": ("synop", "synops", "propagate"),
    "nm_neuron_update_active": ("neuron_update_active", "neuron_updates_active", "update"),
    "nm_neuron_update_idle": ("neuron_update_idle", "neuron_updates_idle", "update"),
    "nm_tile_spike": ("tile_spike", "packets", "propagate"),
    "nm_hop_ew": ("hop_ew", "hops_ew", "propagate"),
    "nm_hop_ns": ("hop_ns", "hops_ns", "propagate"),
    "nm_chip_hop": ("chip_hop", "chip_hops", "propagate"),
    "nm_barrier": ("barrier", "barriers", "sync"),
}
"""ledger event -> (preset energy constant, EventCounts field, op)."""

TRAFFIC_EVENTS = {
    "packets": ("packet", "tile_spike", "per packet (one 32-bit value)"),
    "hops_ew": ("hop_ew", "hop_ew", "per packet per east-west hop"),
    "hops_ns": ("hop_ns", "hop_ns", "per packet per north-south hop"),
    "chip_hops": ("chip_hop", "chip_hop", "per packet per chip-to-chip hop"),
    "ops": ("op", "synop", "per value received and accumulated, or compared"),
}
"""traffic count -> (ledger event suffix, preset energy constant, scope)."""
TRAFFIC_KINDS = {
    "select": "the k-winners reductions between the cores holding candidates and the root core",
    "exchange": "the exchange between the cores of a node split over several cores",
}
TRAFFIC_OPS = {"select": "select", "exchange": "update"}
"""traffic kind -> the op it is charged to."""

BREAKDOWN = {
    "synops": ("nm_synop",),
    "neuron_update_active": ("nm_neuron_update_active",),
    "neuron_update_idle": ("nm_neuron_update_idle",),
    "intra_tile_spikes": ("nm_tile_spike",),
    "hops": ("nm_hop_ew", "nm_hop_ns", "nm_chip_hop"),
    "barrier": ("nm_barrier",),
    "projection": ("nm_projection_mac",),
    "select": tuple(f"nm_select_{ev}" for ev, _, _ in TRAFFIC_EVENTS.values()),
    "exchange": tuple(f"nm_exchange_{ev}" for ev, _, _ in TRAFFIC_EVENTS.values()),
    "static": ("nm_static",),
}
DYNAMIC = (
    "synops",
    "neuron_update_active",
    "neuron_update_idle",
    "intra_tile_spikes",
    "hops",
    "projection",
    "select",
    "exchange",
)


def _chip_constant(
    profile: nm.HardwareProfile, attr: str, what: str, evidence: str | None, scope: str
) -> Constant:
    c = profile.constants[f"energy.{attr}"]
    note = f" ({what})" if what else ""
    return Constant(
        float(c.value),
        c.unit,
        f"preset {profile.name} energy.{attr}{note}: {c.source} [evidence: {c.evidence}]",
        evidence or c.evidence,
        scope or c.scope,
    )


def energy_table(profile: nm.HardwareProfile) -> EnergyTable:
    """The preset's chip events (prefixed ``nm_``) plus the host table, with provenance."""
    events: dict[str, Constant] = {}
    for ev, (attr, _, _) in CHIP_EVENTS.items():
        events[ev] = _chip_constant(profile, attr, "", None, "")
    events["nm_projection_mac"] = _chip_constant(
        profile,
        "synop",
        "W_h projection as a dense on-core projection, one synaptic op per MAC",
        "derived",
        "per MAC of the d x d payload projection of an emitting node",
    )
    for kind, what in TRAFFIC_KINDS.items():
        for suffix, attr, scope in TRAFFIC_EVENTS.values():
            events[f"nm_{kind}_{suffix}"] = _chip_constant(profile, attr, what, "derived", scope)
    c = profile.constants["energy.static_power"]
    events["nm_static"] = Constant(
        float(c.value) * 1e-3,
        "pJ",
        f"preset {profile.name} energy.static_power {c.value} mW x 1 ps (1 mW x 1 ps = 1e-3 pJ): "
        f"{c.source} [evidence: {c.evidence}]",
        "derived",
        "per chip per ps of modelled latency",
    )
    host = load_energy_table(HOST_TABLE)
    for ev, const in host.events.items():
        events[ev] = dataclasses.replace(const, source=f"host: {const.source}")
    meta = {"chip_preset": profile.name, "host_table": HOST_TABLE}
    return EnergyTable(name=f"{profile.name}+{HOST_TABLE}", events=events, meta=meta)


def charge_chip(ledger: CostLedger, counts: nm.EventCounts) -> None:
    """The simulator's counted events: messages (``propagate``), neuron updates (``update``),
    barriers (``sync``)."""
    for ev, (_, name, op) in CHIP_EVENTS.items():
        ledger.op(op).add(ev, getattr(counts, name))


def charge_projection(ledger: CostLedger, macs: int) -> None:
    """The emitting nodes' W_h projections (op ``propagate``)."""
    ledger.op("propagate").add("nm_projection_mac", macs)


def charge_traffic(ledger: CostLedger, kind: str, counts: dict[str, int]) -> None:
    """Selection (``select``) or split-node exchange (``update``) traffic, counted in
    :mod:`.traffic`."""
    ledger.op(TRAFFIC_OPS[kind])
    for name, (suffix, _, _) in TRAFFIC_EVENTS.items():
        ledger.add(f"nm_{kind}_{suffix}", counts[name])


def charge_static(ledger: CostLedger, n_chips: int, latency_ps: int) -> None:
    """Static power of every chip over the modelled latency (op ``static``)."""
    ledger.op("static").add("nm_static", n_chips * latency_ps)


def charge_host(
    ledger: CostLedger,
    spec: ModelSpec,
    bsz: int,
    tokens: int,
    *,
    n_lit: int,
    width: int,
    n_final: int,
) -> None:
    """The host's work with the electronic cost model: front end and initial states
    (``encode``), ignition over all nodes (``ignite``), the 'attend' initial state's distances
    (``attend``), the readout (``readout``) and the input stream (``input``)."""
    electronic.charge_encode(ledger, spec, bsz, tokens, n_lit)
    electronic.charge_ignite(ledger, spec, bsz, tokens, width)
    if spec.hyper.init_state == "attend":
        electronic.charge_attend(ledger, spec, bsz, tokens, width)
    electronic.charge_readout(ledger, spec, bsz, tokens, n_final)
    electronic.charge_input(ledger, spec, bsz, tokens)


def breakdown(ledger: CostLedger) -> dict[str, float]:
    """Energy (J) by term (module docstring); sums to ``ledger.energy_j()``."""
    by_event = ledger.energy_by_event()
    out = {k: math.fsum(by_event.get(e, 0.0) for e in evs) for k, evs in BREAKDOWN.items()}
    out["host"] = math.fsum(v for e, v in by_event.items() if not e.startswith("nm_"))
    return out


def split(parts: dict[str, float]) -> dict[str, float]:
    """dynamic / per_step / static / host energy (J) from :func:`breakdown`."""
    return {
        "dynamic": math.fsum(parts[k] for k in DYNAMIC),
        "per_step": parts["barrier"],
        "static": parts["static"],
        "host": parts["host"],
    }


def dynamic_j(ledger: CostLedger) -> float:
    """The activity-driven chip energy (J) of a ledger."""
    return split(breakdown(ledger))["dynamic"]
