r"""A spec mapped onto the chip, and one batch through it.

``prepare`` (:func:`prepare_program`) builds the graph once, reads the node program's
constants, builds the synapses, chooses the payload coding and places the compartments
(:mod:`.mapping`, :mod:`.coding`), and builds the simulator. A call then runs, for a batch x:

1. host: front end, ignition and initial states (:func:`.host.front_end`);
2. chip, per sample (one inference = one ``Simulator.run``, SimPy owns the clock): the ignited
   nodes emit g_i = a_i W_h h_i (the node program's projection) and then ``n_steps`` steps of
   the node program (:mod:`.chip_node`, :mod:`.node_program`) run on the chip, selection
   included; the program reads the final active set (ids, alpha, h) off the chip;
3. host: the readout (:func:`.host.readout`);
4. costs: the simulator's counted events, the node program's projection / selection /
   exchange work (:mod:`.traffic`) and the host work go into the ledger (:mod:`.cost`).

Latency per inference (modelled) = the simulated chip latency (network phase + max core busy
time + barrier per step) + the projection, selection and exchange times; the host is not timed.
A call keeps everything it computes in locals: the program is re-entrant.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from rsgn import neuromorphic as nm
from rsgn.backends.base import Measured, Modelled, Program, Report
from rsgn.backends.cost import CostLedger, EnergyTable
from rsgn.backends.neuromorphic import cost, host, traffic
from rsgn.backends.neuromorphic.chip_node import InferenceLog, RsgnNode
from rsgn.backends.neuromorphic.coding import (
    Coding,
    make_coding,
    payload_width,
    peak_scales,
)
from rsgn.backends.neuromorphic.mapping import (
    GROUP,
    Layout,
    Synapses,
    build_synapses,
    node_params,
    place,
    tangent_coords,
)
from rsgn.backends.neuromorphic.node_program import NodeParams, project
from rsgn.backends.neuromorphic.options import NeuromorphicOptions
from rsgn.backends.neuromorphic.report import details
from rsgn.errors import RsgnError
from rsgn.forward import build_graph
from rsgn.spec import ModelSpec
from rsgn.state import ActiveState, Graph

WALL_HOW = "wall clock of the simulation on this CPU (host ops + SimPy chip), not a hardware figure"


@dataclass(frozen=True)
class Inference:
    """One sample on the chip: the simulator's report, the node program's log and the cost of
    its non-local work."""

    run: nm.RunReport
    log: InferenceLog
    traffic: traffic.InferenceTraffic

    @property
    def latency_ps(self) -> int:
        return int(self.run.latency_ps) + self.traffic.time_ps


def simulator(
    params: NodeParams,
    coding: Coding,
    syn: Synapses,
    layout: Layout,
    profile: nm.HardwareProfile,
    *,
    idle_policy: str,
    seed: int,
    network: nm.Network | None = None,
) -> nm.Simulator:
    """The chip for a coding: every compartment runs :class:`RsgnNode`; ``network`` reuses a
    placed network of the same coding."""
    if network is None:
        syn_list = nm.SynapseList.from_arrays(syn.src, syn.dst, coding.weights, syn.n_neurons)
        model = RsgnNode(params, coding)
        network = nm.Network(
            [nm.NeuronGroup(GROUP, syn.n_neurons, model, layout.placement)], syn_list
        )
    cfg = nm.SimConfig(
        precision="fixed" if coding.fixed else "float",
        payload=coding.payload,
        idle_policy=idle_policy,
        seed=seed,
        record="none",
    )
    try:
        return nm.Simulator(network, profile, layout.topology, cfg)
    except nm.NeuromorphicError as exc:
        raise RsgnError(f"preset {profile.name}: {exc}") from None


def run_sample(
    sim: nm.Simulator,
    params: NodeParams,
    coding: Coding,
    layout: Layout,
    n_steps: int,
    start: ActiveState,
    b: int,
) -> Inference:
    """Sample ``b`` of the host's ignited state on the chip: initial states and emission, then
    ``n_steps`` steps of the node program."""
    d, c = params.d, params.d + 1
    valid = start.valid[b].cpu()
    ids = start.ids[b].cpu()[valid].numpy().astype(np.int64)
    order = np.argsort(ids)
    ids = ids[order]
    alpha = start.alpha[b].cpu()[valid].double().numpy()[order]
    h = start.h[b].cpu()[valid].double().numpy()[order]
    g = project(h, alpha, params.w_h)
    y = np.zeros((params.n_nodes, c))
    y[ids, :d], y[ids, d] = g, alpha
    h_init = np.zeros((params.n_nodes, c))
    h_init[ids, :d], h_init[ids, d] = h, alpha
    log = InferenceLog.start(n_steps, ids, alpha, h, g)
    y = y.ravel()
    rep = sim.run(
        n_steps=n_steps,
        initial_output=coding.encode(np.arange(y.size), y),
        initial_state={GROUP: {"h": h_init.ravel(), "y": y}},
        context=log,
    )
    return Inference(rep, log, traffic.account(layout, d, log))


def final_state(
    infs: list[Inference], d: int, sigma_delta: bool, device: torch.device
) -> ActiveState:
    """The batch's final active set read off the chip, [B, max |A_b|] (float32, ``device``)."""
    finals = [inf.log.final(sigma_delta) for inf in infs]
    width = max([1, *(f[0].size for f in finals)])
    bsz = len(infs)
    ids = np.zeros((bsz, width), np.int64)
    valid = np.zeros((bsz, width), bool)
    alpha = np.zeros((bsz, width), np.float32)
    h = np.zeros((bsz, width, d), np.float32)
    for b, (i, a, hh) in enumerate(finals):
        ids[b, : i.size], valid[b, : i.size] = i, True
        alpha[b, : i.size], h[b, : i.size] = a, hh
    return ActiveState(
        ids=torch.from_numpy(ids).to(device),
        valid=torch.from_numpy(valid).to(device),
        alpha=torch.from_numpy(alpha).to(device),
        h=torch.from_numpy(h).to(device),
    )


class NeuromorphicProgram(Program):
    """An RSGN mapped onto the chip (module docstring); build with :func:`prepare_program`."""

    target = "neuromorphic"

    def __init__(
        self,
        *,
        spec: ModelSpec,
        options: NeuromorphicOptions,
        profile: nm.HardwareProfile,
        device: torch.device,
        graph: Graph,
        params: NodeParams,
        synapses: Synapses,
        layout: Layout,
        coding: Coding,
        sim: nm.Simulator,
        table: EnergyTable,
    ) -> None:
        self.spec = spec
        self.options = options
        self.profile = profile
        self.device = device
        self.graph = graph
        self.params = params
        self.synapses = synapses
        self.layout = layout
        self.coding = coding
        self.sim = sim
        self.table = table

    @property
    def payload_scales(self) -> np.ndarray | None:
        """Per-channel payload LSBs (d state channels, then the gate); None when exact."""
        return None if self.coding.bits is None else self.coding.chan_scale.copy()

    def run_chip(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[host.HostStart, list[Inference]]:
        """Host front end, then every sample of ``x`` on the chip (``lengths``: padding)."""
        lens = None if lengths is None else lengths.to(self.device)
        start = host.front_end(self.spec, self.graph, x.to(self.device), lens)
        n_steps = self.spec.hyper.n_steps
        infs = [
            run_sample(self.sim, self.params, self.coding, self.layout, n_steps, start.state, b)
            for b in range(int(x.shape[0]))
        ]
        return start, infs

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Report]:
        t0 = time.perf_counter()
        start, infs = self.run_chip(x, lengths)
        sd = self.coding.sigma_delta
        final = final_state(infs, self.params.d, sd, self.device)
        logits = host.readout(self.spec, final, start.feats, start.mask)
        wall = time.perf_counter() - t0
        return logits, self._report(x, start, infs, final, wall)

    def _report(
        self,
        x: torch.Tensor,
        start: host.HostStart,
        infs: list[Inference],
        final: ActiveState,
        wall: float,
    ) -> Report:
        bsz, tokens = int(x.shape[0]), int(x.shape[1])
        n = self.spec.hyper.n_nodes
        n_chips = self.layout.topology.n_chips
        sd = self.coding.sigma_delta
        ledger = CostLedger(self.table)
        per_inf = []
        for inf in infs:
            one = CostLedger(self.table)
            cost.charge_chip(one, inf.run.counts)
            cost.charge_projection(one, inf.traffic.projection_macs)
            cost.charge_traffic(one, "select", inf.traffic.select.counts)
            if self.layout.split > 1:
                cost.charge_traffic(one, "exchange", inf.traffic.exchange.counts)
            cost.charge_static(one, n_chips, inf.latency_ps)
            per_inf.append(cost.dynamic_j(one))
            ledger.merge(one)
        cost.charge_host(
            ledger,
            self.spec,
            bsz,
            tokens,
            n_lit=int(start.state.valid.sum()),
            width=int(start.state.ids.shape[1]),
            n_final=int(final.valid.sum()),
        )
        per_sample = [inf.log.active_counts(sd) for inf in infs]
        counts = [int(start.state.valid.sum())] + [
            sum(a[t] for a in per_sample) for t in range(self.spec.hyper.n_steps)
        ]
        lat = [inf.latency_ps * 1e-12 for inf in infs]
        return Report(
            target=self.target,
            preset=self.profile.name,
            n_samples=bsz,
            active_fraction_per_step=[c / max(1, bsz * n) for c in counts],
            wall_time=Measured(wall, "s", WALL_HOW),
            latency=Modelled(
                float(np.mean(lat)) if lat else 0.0,
                "s",
                "SimPy chip time per inference (network phase + max core busy time + barrier "
                "per step) + payload projection, k-winners reductions and split-node exchange; "
                "host front end and readout not timed",
                self._timing_sources(),
            ),
            latency_per_inference=lat,
            ledger=ledger,
            energy_model=cost.MODEL,
            details=details(self, infs, ledger, per_inf, lat),
        )

    def _timing_sources(self) -> tuple[str, ...]:
        return tuple(
            f"preset {self.profile.name} {k}: {c.source}"
            for k, c in sorted(self.profile.constants.items())
            if k.startswith("timing.")
        )

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, headroom: float = 1.0) -> NeuromorphicProgram:
        """A copy of this program whose per-channel payload LSBs come from data: the chip
        program itself runs ``x`` (e.g. training inputs) in float mode with exact payloads,
        and headroom x the largest |g_k| it sends on channel k maps to the largest payload
        (larger values saturate); the gate keeps 1 / (2^(b-1) - 1). Quantised modes only.
        This program is unchanged."""
        bits = self.coding.bits
        if bits is None:
            raise RsgnError("calibrate() needs a payload width (payload_bits or fixed mode)")
        if not headroom > 0:
            raise RsgnError(f"headroom must be > 0, got {headroom}")
        exact = make_coding(
            mode="float",
            bits=None,
            payload_scale=None,
            sigma_delta=False,
            sd_threshold=0.0,
            params=self.params,
            syn=self.synapses,
            weight_bits=self.profile.chip.core.weight_bits,
        )
        twin = dataclasses.replace(self.options, mode="float", payload_bits=None, sigma_delta=False)
        probe = self._with(exact, twin)
        _, infs = probe.run_chip(x)
        peak = np.zeros(self.params.d)
        for inf in infs:
            peak = np.maximum(peak, inf.log.peak)
        return self._with(self.coding.with_scales(peak_scales(peak, bits, headroom)), self.options)

    def _with(self, coding: Coding, options: NeuromorphicOptions) -> NeuromorphicProgram:
        """This mapping with another coding (a new simulator on the same placement)."""
        sim = simulator(
            self.params,
            coding,
            self.synapses,
            self.layout,
            self.profile,
            idle_policy=options.idle_policy,
            seed=options.seed,
        )
        return NeuromorphicProgram(
            spec=self.spec,
            options=options,
            profile=self.profile,
            device=self.device,
            graph=self.graph,
            params=self.params,
            synapses=self.synapses,
            layout=self.layout,
            coding=coding,
            sim=sim,
            table=self.table,
        )


@torch.no_grad()
def prepare_program(
    spec: ModelSpec, options: NeuromorphicOptions, device: torch.device
) -> NeuromorphicProgram:
    """Map ``spec`` onto the chip of ``options`` (module docstring)."""
    spec = spec.to(device)
    profile = options.profile()
    core = profile.chip.core
    graph = build_graph(spec.weights, spec.hyper)
    params = node_params(spec, graph)
    syn = build_synapses(graph, params.d)
    coding = make_coding(
        mode=options.mode,
        bits=payload_width(options.mode, options.payload_bits, core, syn.max_fanin, profile.name),
        payload_scale=options.payload_scale,
        sigma_delta=options.sigma_delta,
        sd_threshold=options.sd_threshold,
        params=params,
        syn=syn,
        weight_bits=core.weight_bits,
    )
    syn_list = nm.SynapseList.from_arrays(syn.src, syn.dst, coding.weights, syn.n_neurons)
    layout, network = place(
        tangent_coords(graph),
        syn,
        syn_list,
        RsgnNode(params, coding),
        profile,
        nodes_per_core=options.nodes_per_core,
        node_split=options.node_split,
        chips=options.chips,
    )
    sim = simulator(
        params,
        coding,
        syn,
        layout,
        profile,
        idle_policy=options.idle_policy,
        seed=options.seed,
        network=network,
    )
    return NeuromorphicProgram(
        spec=spec,
        options=options,
        profile=profile,
        device=device,
        graph=graph,
        params=params,
        synapses=syn,
        layout=layout,
        coding=coding,
        sim=sim,
        table=cost.energy_table(profile),
    )
