r"""The optical target's cost model: counted events -> ledger entries, and the latency model.

Energy :math:`E = \sum_e n_e\,\epsilon_e` over a :class:`~rsgn.backends.cost.CostLedger` whose
table (:func:`energy_table`) holds the 45 nm electronic events (``electronic_45nm``) and the
optical events built from the optics preset, each a :class:`~rsgn.backends.cost.Constant` with
its source:

* ``laser_pulse`` :math:`= P_{laser}\,t_{int}/\eta_{WPE}`: one channel lit for one integration
  :math:`t_{int} = 1/(2B)`; ``slm_frame``, ``modulator_write``, ``dac_sample``,
  ``detector_sample`` (PD + TIA), ``adc_sample`` from the preset;
* ``eit_coupling_pulse`` :math:`= P_{sat}e^{c}\,t_{int}/\eta_{WPE}` and ``sbs_pump_pulse``
  :math:`= P_p\,t_{int}/\eta_{WPE}` for optical activations.

A call is charged (:func:`charge_call`) with the optical events its ops counted
(:class:`~.calls.Counter`), the electronic model (:func:`rsgn.backends.torch.cost.charge_run`)
for the ops computed electronically (``encode``, ``propagate``, ``inhibit``, ``select``,
``update``, ``readout``, ``input``; ``ignite`` and ``attend`` too when ignition is electronic),
and the electronics around the optical readings (B samples, T tokens, N nodes, D = d_space,
W winners; ``planar`` pairs only for D > 3):

==========  =================================================================================
op          electronic events around the optical ones
==========  =================================================================================
ignite      MAC B T (D + 2) (beam encoding) + D per planar pair + 2 B W (normalise the
            selected readings); transcendental 2 B T + 2 B W (encoding; arcosh, exp);
            add 2 B T N (normalise, min over tokens); int 4 B N (select);
            SRAM B T (D + 1) + 2 B W
attend      SRAM B T N (ignition's readings kept) + K (K kept pairs read back); MAC, arcosh
            K + R (R re-read pairs); re-read beams: MAC (D + 2), transcendental 2 each;
            D MACs per planar pair
==========  =================================================================================

Programming (once per program, :func:`charge_programming`): a channel is 3 modulator symbols
and DAC samples (retarder axis, diattenuator rapidity) and 4 transcendentals (artanh, exp, two
angles); the optical graph writes each node's state once (2 N SLM frames, encoding MAC N (D+2))
and reads its E live edges (E laser pulses, detections, ADC samples), then forms the weights:
MAC E (r + D per planar pair), transcendental 4 E (arcosh, sigmoid, exp, softplus), add 3 E,
SRAM E (r + 2), r the affinity rank. An electronic graph costs MAC E (r + D), transcendental
4 E, SRAM E (r + D + 2).

Latency is modelled per inference as a critical path (samples one after another; the same for
every sample): ignition :math:`T(2t_{SLM} + t_{int}) + t_{prop} + t_{ADC}`; an 'attend' re-read
:math:`T(2t_{SLM} + t_{int}) + t_{ADC}`; an optical activation
:math:`t_{mod} + t_{prop} + t_{int} + t_{ADC}` per step; each electronic op its dependent-
operation depth (:math:`\lceil\log_2\rceil` reduction trees, fully parallel lanes)
:math:`\times\ t_{logic}`: ignite :math:`\lceil\log_2 T\rceil + 4\lceil\log_2 N\rceil + 4`,
per step propagate :math:`2\lceil\log_2 d\rceil + \lceil\log_2 K\rceil + 3`, inhibit
:math:`\lceil\log_2 K_{inh}\rceil + 2`, select :math:`4\lceil\log_2 N\rceil`, update
:math:`2\lceil\log_2 d\rceil + 4`, readout :math:`\lceil\log_2 W\rceil + \lceil\log_2 d\rceil + 1`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any

from rsgn import optics
from rsgn.backends.cost import Constant, CostLedger, EnergyTable
from rsgn.backends.optical.calls import Counter
from rsgn.backends.torch import cost as electronic
from rsgn.forward import Trace
from rsgn.spec import ModelSpec
from rsgn.state import Graph

OPTICAL_EVENTS = (
    "laser_pulse",
    "slm_frame",
    "modulator_write",
    "dac_sample",
    "detector_sample",
    "adc_sample",
    "eit_coupling_pulse",
    "sbs_pump_pulse",
)
MODEL = (
    "counted events x per-event energies: electronic_45nm (Horowitz 2014) for the electronics, "
    "the optics preset for laser, SLM, modulator, DAC, detector and ADC events"
)
LATENCY_MODEL = (
    "critical path per inference (samples in sequence): optical frames in sequence per token, "
    "electronics fully parallel with one logic.latency_per_op per dependent level"
)
ELECTRONIC_ALWAYS = ("encode", "propagate", "inhibit", "select", "update", "readout", "input")


def latency_constants(p: optics.OpticalPreset) -> dict[str, dict[str, Any]]:
    """The preset constants the latency model reads, as written (provenance)."""
    keys = (
        "encoder.settle_time",
        "modulator.settle_time",
        "detector.bandwidth",
        "adc.latency",
        "propagation.path_length",
        "logic.latency_per_op",
    )
    return {k: dataclasses.asdict(p.provenance[k]) for k in keys}


def integration_time(p: optics.OpticalPreset) -> float:
    r"""Detector integration time :math:`t_{int} = 1/(2B)` (integrate-and-dump of bandwidth B)."""
    return 1.0 / (2.0 * p.detector.bandwidth)


def _const(p: optics.OpticalPreset, key: str) -> Constant:
    c = p.provenance[key]
    return Constant(
        c.value, "J", f"optics preset {p.name!r} {key} = {c.given}: {c.source}", c.evidence, c.scope
    )


def energy_table(p: optics.OpticalPreset, eit_midpoint: float = 0.0) -> EnergyTable:
    r"""Per-event energies of the hybrid core: the electronic table plus the optical events.

    ``laser_pulse`` :math:`= P\,t_{int}/\eta_{WPE}`; ``eit_coupling_pulse``
    :math:`= P_{sat}e^{c}\,t_{int}/\eta_{WPE}` with :math:`c` = ``eit_midpoint`` (the coupling
    power at the activation's midpoint); ``sbs_pump_pulse`` :math:`= P_p\,t_{int}/\eta_{WPE}`.
    Every constant keeps the preset's source and evidence.
    """
    base = electronic.electronic_table()
    t_int = integration_time(p)
    wpe = p.laser.wall_plug_efficiency
    bw = p.provenance["detector.bandwidth"].given
    eta = p.provenance["laser.wall_plug_efficiency"].given

    def pulse(key: str, power: float, what: str) -> Constant:
        c = p.provenance[key]
        return Constant(
            optics.laser_electrical_energy(power, t_int, wpe),
            "J",
            f"derived from optics preset {p.name!r}: {key} = {c.given} x t_int "
            f"(1/(2B), B = {bw}) / wall-plug efficiency {eta}; {c.source}",
            "derived",
            f"electrical laser energy of {what} during one detector integration",
        )

    events = dict(base.events)
    events.update(
        {
            "laser_pulse": pulse("laser.optical_power", p.laser.optical_power, "one channel"),
            "slm_frame": _const(p, "encoder.write_energy"),
            "modulator_write": _const(p, "modulator.energy_per_write"),
            "dac_sample": _const(p, "dac.energy_per_sample"),
            "detector_sample": _const(p, "detector.energy_per_sample"),
            "adc_sample": _const(p, "adc.energy_per_sample"),
            "eit_coupling_pulse": pulse(
                "eit.saturation_power",
                p.eit.saturation_power * math.exp(eit_midpoint),
                "the EIT coupling beam at the activation midpoint",
            ),
            "sbs_pump_pulse": pulse("sbs.pump_power", p.sbs.pump_power, "the Brillouin pump"),
        }
    )
    meta = {"electronic": base.name, "optical_preset": p.name, "t_int_s": t_int}
    return EnergyTable(name=f"{base.name}+optical:{p.name}", events=events, meta=meta)


# ------------------------------------------------------------------------------ energy
def live_edges(graph: Graph) -> int:
    """E: the graph's live in-edge slots (the distances the graph needs)."""
    return int(graph.in_mask.sum())


def charge_programming(
    ledger: CostLedger, spec: ModelSpec, graph: Graph, offload: dict[str, str], planar: bool
) -> None:
    """The one-off mapping: channels written (op ``program``), the graph read or computed
    (op ``graph``); see the module docstring."""
    hp = spec.hyper
    n, dsp, rank = hp.n_nodes, hp.d_space, spec.weights.aff_u.shape[1]
    e = live_edges(graph)
    if "optical" in (offload["graph"], offload["ignite"]):
        ledger.op("program")
        ledger.add("modulator_write", 3 * n)
        ledger.add("dac_sample", 3 * n)
        ledger.add("transcendental_fp32", 4 * n)
    ledger.op("graph")
    if offload["graph"] == "optical":
        ledger.add("slm_frame", 2 * n)
        for ev in ("laser_pulse", "detector_sample", "adc_sample"):
            ledger.add(ev, e)
        ledger.add("mac_fp32", e * (rank + (dsp if planar else 0)) + n * (dsp + 2))
        ledger.add("transcendental_fp32", 4 * e)
        ledger.add("add_fp32", 3 * e)
        ledger.add("sram_word_32b", e * (rank + 2))
    else:
        electronic.charge_graph(ledger, spec, e)


def charge_call(
    ledger: CostLedger,
    spec: ModelSpec,
    graph: Graph,
    trace: Trace,
    counter: Counter,
    offload: dict[str, str],
) -> None:
    """One call: the electronic ops by the electronic model, the counted optical events, and
    the electronics around the optical readings (module docstring)."""
    hp = spec.hyper
    optical_ignite = offload["ignite"] == "optical"
    ops = ELECTRONIC_ALWAYS if optical_ignite else (*ELECTRONIC_ALWAYS, "ignite", "attend")
    electronic.charge_run(ledger, spec, graph, trace, ops=ops)
    for op, events in counter.events.items():
        ledger.op(op)
        for ev, n in events.items():
            ledger.add(ev, n)
    if not optical_ignite:
        return
    bsz, t, n, dsp = trace.batch, trace.tokens, hp.n_nodes, hp.d_space
    w = bsz * trace.states[0][0].shape[1]  # B W: the ignition's winner slots
    ledger.op("ignite")
    ledger.add("mac_fp32", bsz * t * (dsp + 2) + counter.planar_pairs["ignite"] * dsp + 2 * w)
    ledger.add("transcendental_fp32", 2 * bsz * t + 2 * w)
    ledger.add("add_fp32", 2 * bsz * t * n)
    ledger.add("int_op_32b", 4 * bsz * n)
    ledger.add("sram_word_32b", bsz * t * (dsp + 1) + 2 * w)
    if hp.init_state == "attend":
        kept, reread, beams = counter.attend_kept, counter.reread_pairs, counter.reread_beams
        ledger.op("attend")
        ledger.add("sram_word_32b", bsz * t * n + kept)
        ledger.add(
            "mac_fp32", kept + reread + beams * (dsp + 2) + counter.planar_pairs["attend"] * dsp
        )
        ledger.add("transcendental_fp32", kept + reread + 2 * beams)


def energy_by_domain(ledger: CostLedger) -> dict[str, float]:
    """Energy (J) of the optical events and of the electronics."""
    by_ev = ledger.energy_by_event()
    opt = sum(v for k, v in by_ev.items() if k in OPTICAL_EVENTS)
    return {"optical": opt, "electronic": sum(by_ev.values()) - opt}


# ------------------------------------------------------------------------------ latency
def _log2(n: float) -> int:
    return int(math.ceil(math.log2(max(2.0, float(n)))))


def _optical_pass(lat: dict[str, float], p: optics.OpticalPreset, frames: int, prop: bool) -> None:
    """``frames`` beams written and integrated one after another, one ADC conversion."""
    lat["slm"] += frames * 2 * p.encoder.settle_time
    lat["integration"] += frames * integration_time(p)
    if prop:
        lat["propagation"] += optics.propagation_delay(
            p.propagation.path_length, p.propagation.group_index
        )
    lat["adc"] += p.adc.latency


def programming_latency(
    spec: ModelSpec, p: optics.OpticalPreset, offload: dict[str, str]
) -> dict[str, float]:
    """Seconds to map the model (once): channel settle, then the graph's reads."""
    lat: dict[str, float] = defaultdict(float)
    depth = _log2(spec.weights.aff_u.shape[1]) + 4
    if "optical" in (offload["graph"], offload["ignite"]):
        lat["modulator"] += p.modulator.settle_time
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
    if offload["propagate"] != "electronic":
        t_prop = optics.propagation_delay(p.propagation.path_length, p.propagation.group_index)
        lat["modulator"] += steps * p.modulator.settle_time
        lat["integration"] += steps * integration_time(p)
        lat["propagation"] += steps * t_prop
        lat["adc"] += steps * p.adc.latency
    lat["electronic"] += depth * p.logic.latency_per_op
    return dict(lat)
