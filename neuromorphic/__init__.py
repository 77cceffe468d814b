"""rsgn.neuromorphic: an event-driven neuromorphic chip simulator (numpy functional pass, SimPy
timing pass with per-core processes and an event-driven mesh).

This package knows nothing of RSGN. It runs any sparse graph network of neuron groups placed
on the cores of a Loihi/TrueNorth/SpiNNaker-like chip and reports event counts, energy with a
breakdown, latency and NeuroBench metrics.

Typical use::

    from rsgn import neuromorphic as nm

    prof = nm.load_preset("loihi2_est")           # nm.list_presets() for the others
    topo = nm.Topology(prof)                       # one chip; Topology(prof, 2, 1) for two
    place = nm.place_sequential(n, topo, per_core=256)
    net = nm.Network([nm.NeuronGroup("h", n, nm.ReLU(threshold=0.1), place)],
                     nm.SynapseList.from_arrays(src, dst, w, n))
    cfg = nm.SimConfig(payload=nm.PayloadCoding(bits=8, scale=1 / 64),
                       idle_policy="touched_only")
    rep = nm.Simulator(net, prof, topo, cfg).run(n_steps=4, initial_output=y0)
    rep.final_output, rep.energy.total_pj, rep.latency_ns, rep.neurobench, rep.trace_hash
    rep.counts.sim_events, rep.counts.noc_messages, rep.energy.by_class

Mapping a sparse graph network (what a backend must know)
---------------------------------------------------------
- One simulator neuron = one compartment = one scalar state that sends one value. A graph
  node with a d-dimensional state is ``d`` (+1 for a gate) neurons; capacity is counted in
  neurons (``CoreSpec.max_neurons``).
- Synapses are directed ``src -> dst`` over global neuron indices (groups are concatenated in
  order; ``Network.group(name)`` gives a group's slice). Weight ``w[src, dst]`` multiplies the
  payload of ``src``; no duplicate pairs. A step computes ``x = W^T p(t-1) + ext(t)``, then
  ``y = model(x)``: one algorithmic step is one synaptic delay.
- Placement is yours: an int array neuron -> global core (``Topology`` numbers cores chip by
  chip, tile by tile). ``place_sequential`` and ``place_by_coordinates`` (Morton order over 2-D
  coordinates, e.g. a node's position in the Poincare disk) keep neighbours on the same or
  nearby tiles; co-located neurons cost no hops. Over-full cores raise ``CapacityError``.
- Events are graded only on chips with ``max_payload_bits >= 2`` (``loihi2_est``,
  ``spinnaker2``); ``loihi`` and ``truenorth`` take binary models (``LIF``) only.
  ``PayloadCoding(bits=None)`` in float mode sends exact values: that is the mode that must
  reproduce a float reference. ``sigma_delta=True`` sends changes larger than ``threshold``.
- Custom dynamics: ``Callback(update_float, update_fixed, state=..., graded=...)`` with
  vectorised ``f(state, idx, x, ctx) -> y``; randomness only from ``ctx.rng``.
- Fixed point: ``SimConfig(precision="fixed")`` needs integer weights within
  ``core.weight_bits`` (``quantize_weights``) and integer inputs.
- Within a step a model may declare communication rounds (``ctx.phase(name, compute=...,
  src=..., dst=..., packets=...)``): reductions, exchanges, host I/O (core -1). They are timed
  on the same event-driven network and charged per class.
- Energy and latency constants carry provenance (``profile.provenance()``); TrueNorth's
  synaptic energy is all-in dynamic (no extra dynamic terms). Reports serialise with
  ``to_dict()``.
"""

from .coding import PayloadCoding, SigmaDeltaState, quantize_payload, quantize_weights, saturate
from .errors import CapacityError, ConfigError, NetworkError, NeuromorphicError, PresetError
from .mapping import (
    CoreUsage,
    check_capacity,
    core_order,
    core_usage,
    place_by_coordinates,
    place_sequential,
)
from .network import Layer, Network, NeuronGroup, SynapseList
from .neurons import LIF, OPS, Callback, Linear, NeuronModel, Phase, ReLU, StepContext
from .noc import CountingEnvironment, Mesh, simulate_flows
from .profile import (
    EVIDENCE_CLASSES,
    ChipSpec,
    Constant,
    CoreSpec,
    EnergyTable,
    HardwareProfile,
    NocSpec,
    TimingTable,
    list_presets,
    load_preset,
    load_profile,
    override,
    profile_from_dict,
)
from .report import (
    ENERGY_TERMS,
    BatchReport,
    EnergyBreakdown,
    EventCounts,
    NeuroBenchMetrics,
    RunReport,
    TrafficCounts,
    compute_energy,
)
from .simulator import IDLE_POLICIES, NOC_MODES, SimConfig, Simulator, group_flows
from .timing import FlowSet, PhasePlan, StepPlan, TimingResult, simulate
from .topology import HopCounts, Routes, Topology

__all__ = [
    "BatchReport",
    "Callback",
    "CapacityError",
    "ChipSpec",
    "ConfigError",
    "Constant",
    "CoreSpec",
    "CoreUsage",
    "CountingEnvironment",
    "ENERGY_TERMS",
    "EVIDENCE_CLASSES",
    "EnergyBreakdown",
    "EnergyTable",
    "EventCounts",
    "FlowSet",
    "HardwareProfile",
    "HopCounts",
    "IDLE_POLICIES",
    "LIF",
    "Layer",
    "Linear",
    "Mesh",
    "NOC_MODES",
    "Network",
    "NetworkError",
    "NeuroBenchMetrics",
    "NeuromorphicError",
    "NeuronGroup",
    "NeuronModel",
    "NocSpec",
    "OPS",
    "PayloadCoding",
    "Phase",
    "PhasePlan",
    "PresetError",
    "ReLU",
    "Routes",
    "RunReport",
    "SigmaDeltaState",
    "SimConfig",
    "Simulator",
    "StepContext",
    "StepPlan",
    "SynapseList",
    "TimingResult",
    "TimingTable",
    "Topology",
    "TrafficCounts",
    "check_capacity",
    "compute_energy",
    "core_order",
    "core_usage",
    "group_flows",
    "list_presets",
    "load_preset",
    "load_profile",
    "override",
    "place_by_coordinates",
    "place_sequential",
    "profile_from_dict",
    "quantize_payload",
    "quantize_weights",
    "saturate",
    "simulate",
    "simulate_flows",
]
