r"""The optical target's cost model: counted events -> ledger entries, and the latency model.

Energy :math:`E = \sum_e n_e\,\epsilon_e` over a :class:`~rsgn.backends.cost.CostLedger` whose
table (:func:`energy_table`, built per program from its :class:`~.system.System`) holds the
45 nm electronic events (``electronic_45nm``, at the system's precision) and the optical events,
each a :class:`~rsgn.backends.cost.Constant` whose source traces it to a device of the preset:

====================  ========================================================================
event                 energy (per event)
====================  ========================================================================
encoder_symbol        one symbol of one encoder section, ``encoder.energy_per_symbol``
dac_sample            one drive sample, ``dac.energy_per_sample``
adc_sample            one conversion, ``adc.energy_per_sample``
laser_window          one source on for one window: :math:`P_L t_{int}/\eta_{WPE}`, with
                      :math:`P_L` the link budget's source power (:mod:`.system`)
receiver_window       one photodiode + TIA on for one window, ``detector.power`` x
                      :math:`t_{int}`
node_hold_window      one node device holding its settings for one window,
                      ``node.holding_power`` x :math:`t_{int}`
node_setting          one node device written: ``node.holding_power`` x ``node.settle_time``
eit_probe, sbs_pump   an activation's probe (EIT) or pump (SBS) over the activation window,
                      :math:`P \cdot t_{act}/\eta_{WPE}`
eit_coupling,         the drive beam (EIT coupling, SBS seed) at the top of its range over the
sbs_seed              window (the source supplies it; the power section attenuates)
activation_receiver   the activation's receiver on for its window, ``detector.power`` x
                      :math:`t_{act}`
eit_apparatus_window  the cold-atom apparatus on for one activation window,
                      ``eit.apparatus_power`` x :math:`t_{act}`
====================  ========================================================================

A call (:func:`charge_call`) is charged with

* per written state (:class:`~.calls.Counter`): 2 sub-symbols x 3 sections, i.e. 6 DAC samples
  and 6 encoder symbols per encoder that writes it (G groups, each encoder with its own drive
  chain; one encoder for a planar pair's state): the fan-out F spreads them over F readings;
  per reading one ADC conversion;
* the always-on devices for the time the inference occupies them: with ``schedule =
  'streaming'`` (samples back to back) the windows it keeps the core busy (each device's share
  of the :math:`n_{win}` windows in sequence, W wavelengths sharing the node devices), charged
  to each op's own windows (lasers and receivers: ignite, attend; node holding: ``static``);
  with ``'single'`` the whole modelled latency (as a number of windows), under ``static``;
* the node devices' setting energy spread over ``reuse`` inferences (``static``);
* optical activations: per activation one DAC sample and encoder symbol (the drive power),
  probe or pump, drive beam, receiver window and ADC conversion; the EIT apparatus over the
  activation windows;
* the electronic model (:func:`rsgn.backends.torch.cost.charge_run`, at the system's
  precision) for the ops computed electronically (``encode``, ``propagate``, ``inhibit``,
  ``select``, ``update``, ``readout``, ``input``; ``ignite`` and ``attend`` when ignition is
  electronic), and the electronics around the optical readings (B samples, T tokens, N nodes,
  D = d_space, W winners; P planar pairs for D > 3):

==========  =================================================================================
op          electronic events around the optical ones (at the system's precision)
==========  =================================================================================
ignite      drive values of each written state: MAC (D + 2), transcendental 2; per reading a
            normalisation and a min over tokens: MAC + add; D MACs per planar pair;
            int 4 B N (select); 2 MAC + 2 transcendental per winner (arcosh, exp);
            SRAM B T (D + 1) + 2 B W
attend      ``attend = 'keep'``: SRAM B T N (ignition's readings stored) + K (K kept pairs
            read back); ``'reread'``: the T states written again, R pairs converted; MAC,
            arcosh K + R; re-written states: MAC (D + 2), transcendental 2 each; D MACs per
            planar pair
==========  =================================================================================

Programming (once per program, :func:`charge_programming`): the node devices written (op
``program``: ``node_setting`` per device, 4 transcendentals per channel for its settings), the
optical graph's N node states written once and read by the channels of their E live out-edges
(N windows, E conversions), then the weights formed electronically: MAC E (r + D per planar
pair) + N (D + 2), transcendental 4 E, add 3 E, SRAM E (r + 2), r the affinity rank. An
electronic graph costs what the electronic model charges.

Latency is modelled per inference as a critical path (one sample): ignition :math:`T t_{int} +
t_{prop} + t_{ADC}`; an 'attend' re-read :math:`T t_{int} + t_{ADC}`; an optical activation
per step :math:`1/R_{sym} + t_{act} + t_{prop} + t_{ADC}`; each electronic op its dependent-
operation depth (:math:`\lceil\log_2\rceil` reduction trees, fully parallel lanes)
:math:`\times\ t_{logic}`: ignite :math:`\lceil\log_2 T\rceil + 4\lceil\log_2 N\rceil + 4`,
per step propagate :math:`2\lceil\log_2 d\rceil + \lceil\log_2 K\rceil + 3`, inhibit
:math:`\lceil\log_2 K_{inh}\rceil + 2`, select :math:`4\lceil\log_2 N\rceil`, update
:math:`2\lceil\log_2 d\rceil + 4`, readout :math:`\lceil\log_2 W\rceil + \lceil\log_2 d\rceil + 1`.
With W wavelengths, W samples run at once (the latency of each is unchanged).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any

from rsgn import optics
from rsgn.backends.cost import Constant, CostLedger, EnergyTable
from rsgn.backends.optical.activation import LogPowerActivation
from rsgn.backends.optical.calls import Counter
from rsgn.backends.optical.system import DRIVES, SUBSYMBOLS, System
from rsgn.backends.torch import cost as electronic
from rsgn.forward import Trace
from rsgn.spec import ModelSpec
from rsgn.state import Graph

OPTICAL_EVENTS = (
    "encoder_symbol",
    "dac_sample",
    "adc_sample",
    "laser_window",
    "receiver_window",
    "node_hold_window",
    "node_setting",
    "eit_probe",
    "eit_coupling",
    "sbs_pump",
    "sbs_seed",
    "activation_receiver",
    "eit_apparatus_window",
)
MODEL = (
    "counted events x per-event energies: electronic_45nm (Horowitz 2014) for the electronics "
    "at the stated precision; the optics preset's devices (encoder, DAC, ADC, receivers, node "
    "devices, lasers from the link budget) for the optical core"
)
LATENCY_MODEL = (
    "critical path per inference: integration windows in sequence per token, electronics fully "
    "parallel with one logic.latency_per_op per dependent level"
)
ELECTRONIC_ALWAYS = ("encode", "propagate", "inhibit", "select", "update", "readout", "input")
STATE_SAMPLES = SUBSYMBOLS * DRIVES
"""DAC samples (and encoder symbols per encoder) of one written state."""


def latency_constants(p: optics.OpticalPreset) -> dict[str, dict[str, Any]]:
    """The preset constants the latency model reads, as written (provenance)."""
    keys = (
        "encoder.symbol_rate",
        "adc.latency",
        "node.settle_time",
        "propagation.path_length",
        "logic.latency_per_op",
    )
    return {k: dataclasses.asdict(p.provenance[k]) for k in keys}


def _const(p: optics.OpticalPreset, key: str) -> Constant:
    c = p.provenance[key]
    return Constant(
        c.value, "J", f"optics preset {p.name!r} {key} = {c.given}: {c.source}", c.evidence, c.scope
    )


def _derived(value: float, source: str, scope: str) -> Constant:
    return Constant(value, "J", source, "derived", scope)


def energy_table(system: System, activation: LogPowerActivation | None = None) -> EnergyTable:
    """Per-event energies of this program's core (module docstring): the electronic table plus
    the optical events; every constant keeps the preset's sources."""
    p = system.preset
    base = electronic.electronic_table()
    prov = p.provenance
    eta = p.laser.wall_plug_efficiency
    wpe = prov["laser.wall_plug_efficiency"]
    t = system.window
    rate = prov["encoder.symbol_rate"].given
    laser_src = (
        f"derived from optics preset {p.name!r}: source power {system.laser_power:.4g} W "
        f"(link budget: fan-out {system.fanout}, channel power {system.channel_power:.4g} W for "
        f"link.target_snr_db = {prov['link.target_snr_db'].given}; "
        f"{prov['link.target_snr_db'].source}) x window {t:.4g} s (2 symbols at {rate}) / "
        f"wall-plug efficiency {wpe.given} ({wpe.source})"
    )
    events = dict(base.events)
    events.update(
        {
            "encoder_symbol": _const(p, "encoder.energy_per_symbol"),
            "dac_sample": _const(p, "dac.energy_per_sample"),
            "adc_sample": _const(p, "adc.energy_per_sample"),
            "laser_window": _derived(
                optics.laser_electrical_energy(system.laser_power, t, eta),
                laser_src,
                "electrical energy of one source laser on for one window",
            ),
            "receiver_window": _derived(
                p.detector.power * t,
                f"optics preset {p.name!r} detector.power = {prov['detector.power'].given} x "
                f"window {t:.4g} s (2 symbols at {rate}): {prov['detector.power'].source}",
                "one photodiode + TIA on for one window",
            ),
            "node_hold_window": _derived(
                p.node.holding_power * t,
                f"optics preset {p.name!r} node.holding_power = "
                f"{prov['node.holding_power'].given} x window {t:.4g} s: "
                f"{prov['node.holding_power'].source}",
                "one node device holding its settings for one window",
            ),
            "node_setting": _derived(
                p.node.holding_power * p.node.settle_time,
                f"optics preset {p.name!r} node.holding_power x node.settle_time = "
                f"{prov['node.holding_power'].given} x {prov['node.settle_time'].given}: "
                f"{prov['node.settle_time'].source}",
                "one node device written and settled",
            ),
        }
    )
    events.update(_activation_events(p, activation))
    meta = {
        "electronic": base.name,
        "precision": system.precision.name,
        "optical_preset": p.name,
        "window_s": system.window,
    }
    return EnergyTable(name=f"{base.name}+optical:{p.name}", events=events, meta=meta)


def _activation_events(
    p: optics.OpticalPreset, act: LogPowerActivation | None
) -> dict[str, Constant]:
    """The activation events (zero without an optical activation, so every table has them)."""
    names = ("eit_probe", "eit_coupling", "sbs_pump", "sbs_seed", "activation_receiver")
    out = {
        n: Constant(0.0, "J", "no optical activation in this program [Zuo2019]", "estimate", n)
        for n in (*names, "eit_apparatus_window")
    }
    if act is None:
        return out
    prov = p.provenance
    eta = p.laser.wall_plug_efficiency
    t = act.window
    src = "eit" if act.kind == "eit" else "sbs"
    source_key = "eit.probe_power" if act.kind == "eit" else "sbs.pump_power"
    drive_key = "eit.saturation_power" if act.kind == "eit" else "sbs.pump_power"
    how = f"over the {t:.4g} s activation window / wall-plug efficiency"
    out[f"{src}_{'probe' if act.kind == 'eit' else 'pump'}"] = _derived(
        optics.laser_electrical_energy(act.source_power, t, eta),
        f"optics preset {p.name!r} {source_key} = {prov[source_key].given} {how}: "
        f"{prov[source_key].source}",
        f"the {act.kind.upper()} activation's {'probe' if act.kind == 'eit' else 'pump'}",
    )
    out[f"{src}_{'coupling' if act.kind == 'eit' else 'seed'}"] = _derived(
        optics.laser_electrical_energy(act.drive_power_max, t, eta),
        f"derived: top of the drive range, {act.drive_power_max:.4g} W (from "
        f"{drive_key} = {prov[drive_key].given}) {how}: {prov[drive_key].source}",
        f"the {act.kind.upper()} activation's drive beam",
    )
    out["activation_receiver"] = _derived(
        p.detector.power * t,
        f"optics preset {p.name!r} detector.power = {prov['detector.power'].given} over the "
        f"activation window: {prov['detector.power'].source}",
        "the activation's receiver on for its window",
    )
    if act.kind == "eit":
        out["eit_apparatus_window"] = _derived(
            p.eit.apparatus_power * t,
            f"optics preset {p.name!r} eit.apparatus_power = "
            f"{prov['eit.apparatus_power'].given} over the {t:.4g} s activation window: "
            f"{prov['eit.apparatus_power'].source}",
            "the cold-atom apparatus on for one activation window",
        )
    return out


# ------------------------------------------------------------------------------ energy
def live_edges(graph: Graph) -> int:
    """E: the graph's live in-edge slots (the distances the graph needs)."""
    return int(graph.in_mask.sum())


def charge_states(ledger: CostLedger, system: System, states: float) -> None:
    """Written states: 6 DAC samples and 6 encoder symbols per encoder that writes it (each
    encoder has its own drive chain)."""
    encoders = 1 if system.planar else system.groups
    ledger.add("dac_sample", STATE_SAMPLES * encoders * states)
    ledger.add("encoder_symbol", STATE_SAMPLES * encoders * states)


def charge_on(ledger: CostLedger, system: System, windows: float, *, hold: bool) -> None:
    """The core's always-on devices for ``windows`` windows in sequence (the W wavelengths run
    at once: each source and receiver serves 1/W of them; the node devices serve all):
    lasers and receivers (and node holding)."""
    w = system.wavelengths
    ledger.add("laser_window", system.lasers * windows / w)
    ledger.add("receiver_window", system.receivers * windows / w)
    if hold:
        ledger.add("node_hold_window", system.node_devices * windows / w)


def charge_programming(
    ledger: CostLedger, spec: ModelSpec, graph: Graph, offload: dict[str, str], system: System
) -> None:
    """The one-off mapping: node devices written (op ``program``), the graph read or computed
    (op ``graph``); see the module docstring."""
    hp = spec.hyper
    n, dsp, rank = hp.n_nodes, hp.d_space, spec.weights.aff_u.shape[1]
    prec = system.precision
    e = live_edges(graph)
    if "optical" in (offload["graph"], offload["ignite"]):
        ledger.op("program")
        ledger.add("node_setting", system.node_devices)
        ledger.add(prec.transcendental, 4 * n)
    ledger.op("graph")
    if offload["graph"] == "optical":
        charge_states(ledger, system, e if system.planar else n)
        ledger.add("adc_sample", e)
        charge_on(ledger, system, n, hold=False)
        ledger.add(prec.mac, e * (rank + (dsp if system.planar else 0)) + n * (dsp + 2))
        ledger.add(prec.transcendental, 4 * e)
        ledger.add(prec.add, 3 * e)
        ledger.add(prec.sram, e * (rank + 2))
    else:
        electronic.charge_graph(ledger, spec, e, prec)


def charge_call(
    ledger: CostLedger,
    spec: ModelSpec,
    graph: Graph,
    trace: Trace,
    counter: Counter,
    offload: dict[str, str],
    system: System,
    *,
    activation: LogPowerActivation | None,
    schedule: str,
    latency_s: float,
    reuse: int,
) -> None:
    """One call: the electronic ops by the electronic model, the counted optical work, the
    always-on devices, the amortised node setting (module docstring)."""
    prec = system.precision
    bsz = trace.batch
    optical_ignite = offload["ignite"] == "optical"
    ops = ELECTRONIC_ALWAYS if optical_ignite else (*ELECTRONIC_ALWAYS, "ignite", "attend")
    electronic.charge_run(ledger, spec, graph, trace, ops=ops, prec=prec)
    streaming = schedule == "streaming"
    for op in counter.readings:
        ledger.op(op)
        charge_states(ledger, system, counter.states[op])
        ledger.add("adc_sample", counter.readings[op])
        if streaming:
            charge_on(ledger, system, counter.windows[op], hold=False)
    if activation is not None and counter.activations:
        ledger.op("propagate")
        m = counter.activations
        ledger.add("dac_sample", m)
        ledger.add("encoder_symbol", m)
        ledger.add("adc_sample", m)
        ledger.add("activation_receiver", m)
        probe, drive = (
            ("eit_probe", "eit_coupling")
            if activation.kind == "eit"
            else (
                "sbs_pump",
                "sbs_seed",
            )
        )
        ledger.add(probe, m)
        ledger.add(drive, m)
        if streaming and activation.kind == "eit":
            ledger.add("eit_apparatus_window", counter.activation_windows / system.wavelengths)
    ledger.op("static")
    if counter.readings:
        ledger.add("node_setting", system.node_devices * bsz / reuse)
        if streaming:
            busy = sum(counter.windows.values())
            ledger.add("node_hold_window", system.node_devices * busy / system.wavelengths)
    if not streaming:  # every sample alone: the devices on for its whole latency
        if counter.readings:
            charge_on(ledger, system, latency_s * bsz / system.window, hold=True)
        if activation is not None and activation.kind == "eit":
            ledger.add("eit_apparatus_window", latency_s * bsz / activation.window)
    if not optical_ignite:
        return
    _charge_readout_electronics(ledger, spec, trace, counter, prec)


def _charge_readout_electronics(
    ledger: CostLedger,
    spec: ModelSpec,
    trace: Trace,
    counter: Counter,
    prec: electronic.Precision,
) -> None:
    """The electronics around the optical readings of ignite and attend (module docstring)."""
    hp = spec.hyper
    bsz, t, n, dsp = trace.batch, trace.tokens, hp.n_nodes, hp.d_space
    w = bsz * trace.states[0][0].shape[1]  # B W: the ignition's winner slots
    states = counter.states["ignite"]
    reads = counter.readings["ignite"]
    ledger.op("ignite")
    ledger.add(prec.mac, states * (dsp + 2) + reads + counter.planar_pairs["ignite"] * dsp + 2 * w)
    ledger.add(prec.transcendental, 2 * states + 2 * w)
    ledger.add(prec.add, reads)
    ledger.add("int_op_32b", 4 * bsz * n)
    ledger.add(prec.sram, bsz * t * (dsp + 1) + 2 * w)
    if hp.init_state == "attend":
        kept, reread = counter.attend_kept, counter.reread_pairs
        rewritten = counter.states.get("attend", 0)
        ledger.op("attend")
        ledger.add(prec.sram, counter.stored + kept)
        ledger.add(
            prec.mac,
            kept + reread + rewritten * (dsp + 2) + counter.planar_pairs["attend"] * dsp,
        )
        ledger.add(prec.transcendental, kept + reread + 2 * rewritten)


OPTICAL_CORE_OPS = ("ignite", "attend", "static")
"""The ops whose ledger entries are the optical core's share of an inference (the offloaded
distance readings with their converters, lasers, receivers, node devices and the electronics
around them)."""


def energy_by_domain(ledger: CostLedger) -> dict[str, float]:
    """Energy (J) of the optical events and of the electronics."""
    by_ev = ledger.energy_by_event()
    opt = sum(v for k, v in by_ev.items() if k in OPTICAL_EVENTS)
    return {"optical": opt, "electronic": sum(by_ev.values()) - opt}


def mac_equivalents(spec: ModelSpec, trace: Trace, counter: Counter) -> float:
    """The multiply-accumulates the electronic model spends on the distances the core read in a
    call: (D + 1) per ignition reading and per 'attend' pair (kept or re-read)."""
    dsp = spec.hyper.d_space
    pairs = counter.readings.get("ignite", 0) + counter.attend_kept + counter.reread_pairs
    return float(pairs * (dsp + 1))


# ------------------------------------------------------------------------------ latency
def _log2(n: float) -> int:
    return int(math.ceil(math.log2(max(2.0, float(n)))))


def _optical_pass(lat: dict[str, float], p: optics.OpticalPreset, windows: int, prop: bool) -> None:
    """``windows`` states written and integrated one after another, one ADC conversion."""
    lat["integration"] += windows * p.window
    if prop:
        lat["propagation"] += optics.propagation_delay(
            p.propagation.path_length, p.propagation.group_index
        )
    lat["adc"] += p.adc.latency


def programming_latency(
    spec: ModelSpec, p: optics.OpticalPreset, offload: dict[str, str]
) -> dict[str, float]:
    """Seconds to map the model (once): node devices settle, then the graph's reads."""
    lat: dict[str, float] = defaultdict(float)
    depth = _log2(spec.weights.aff_u.shape[1]) + 4
    if "optical" in (offload["graph"], offload["ignite"]):
        lat["node_settle"] += p.node.settle_time
    if offload["graph"] == "optical":
        _optical_pass(lat, p, spec.hyper.n_nodes, prop=True)
        depth += 1
    lat["electronic"] += depth * p.logic.latency_per_op
    return dict(lat)


def call_latency(
    spec: ModelSpec,
    p: optics.OpticalPreset,
    offload: dict[str, str],
    graph: Graph,
    trace: Trace,
    counter: Counter,
    activation: LogPowerActivation | None,
) -> dict[str, float]:
    """Seconds per inference by part (module docstring); the same for every sample."""
    hp = spec.hyper
    lat: dict[str, float] = defaultdict(float)
    n, d, t = hp.n_nodes, hp.d_hidden, trace.tokens
    depth = _log2(t) + 4 * _log2(n) + 4
    if offload["ignite"] == "optical":
        _optical_pass(lat, p, t, prop=True)
        if counter.reread_beams:
            _optical_pass(lat, p, t, prop=False)
    steps = len(trace.states) - 1
    k, k_inh = graph.in_idx.shape[1], graph.inh_idx.shape[1]
    per_step = (2 * _log2(d) + _log2(k) + 3) + (_log2(k_inh) + 2) + 4 * _log2(n)
    per_step += 2 * _log2(d) + 4
    depth += steps * per_step + _log2(trace.states[-1][0].shape[1]) + _log2(d) + 1
    if activation is not None:
        t_prop = optics.propagation_delay(p.propagation.path_length, p.propagation.group_index)
        lat["drive"] += steps / p.encoder.symbol_rate
        lat["activation"] += steps * activation.window
        lat["propagation"] += steps * t_prop
        lat["adc"] += steps * p.adc.latency
    lat["electronic"] += depth * p.logic.latency_per_op
    return dict(lat)
