r"""A spec mapped onto the chip, and one batch through it.

``prepare`` (:func:`prepare_program`) builds the graph once (compile time: edge weights,
positions, inhibition neighbourhoods), reads the node program's and the front end's constants,
builds the message synapses, chooses the payload coding, places the compartments
(:mod:`.mapping`, :mod:`.coding`) and builds the simulator. A call runs every sample as one
inference on the chip (:mod:`.chip_program`: ``n_steps + 2`` simulator steps, SimPy owns the
clock): the host streams the tokens in and reads the logits out, nothing else. The report
carries the simulator's counts and times, charged by :mod:`.cost`.

Latency per inference (modelled) = the simulated time of the whole run: host input, front
end, ignition, every propagation step (compute, messages, selection rounds, barrier), the
readout and the host output. A call keeps what it computes in locals: the program is
re-entrant.
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
from rsgn.backends.neuromorphic import cost
from rsgn.backends.neuromorphic import front_end as fe
from rsgn.backends.neuromorphic.chip_program import ChipConfig, InferenceLog, RsgnChip
from rsgn.backends.neuromorphic.coding import Coding, make_coding, payload_width, peak_scales
from rsgn.backends.neuromorphic.mapping import (
    Layout,
    Synapses,
    build_synapses,
    network,
    node_params,
    place,
    tangent_coords,
)
from rsgn.backends.neuromorphic.node_program import NodeParams
from rsgn.backends.neuromorphic.options import NeuromorphicOptions
from rsgn.backends.neuromorphic.report import details
from rsgn.errors import RsgnError
from rsgn.forward import build_graph
from rsgn.spec import ModelSpec
from rsgn.state import Graph

WALL_HOW = "wall clock of the simulation on this CPU (numpy functional pass + SimPy timing pass)"


def check_lengths(lengths: torch.Tensor | None, bsz: int, t: int) -> list[int]:
    """The real steps L_b of each of ``bsz`` samples of ``t`` steps (1 <= L_b <= t); every
    step is real when ``lengths`` is None."""
    if lengths is None:
        return [t] * bsz
    lens = [int(v) for v in lengths.detach().cpu().reshape(-1).tolist()]
    if len(lens) != bsz:
        raise RsgnError(f"lengths has {len(lens)} entries for a batch of {bsz}")
    bad = [v for v in lens if not 1 <= v <= t]
    if bad:
        raise RsgnError(f"lengths must lie in [1, {t}] (the padded length), got {bad[0]}")
    return lens


@dataclass(frozen=True)
class Inference:
    """One sample on the chip: the simulator's report and the chip program's log."""

    run: nm.RunReport
    log: InferenceLog

    @property
    def latency_ps(self) -> int:
        return int(self.run.latency_ps)


def front_params(spec: ModelSpec, graph: Graph) -> fe.FrontParams:
    """The front end's, ignition's, initial state's and readout's constants (float64 copies;
    the positions and conformal factors as the compiled graph stores them)."""
    w, hp = spec.weights, spec.hyper

    def f64(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().cpu().double().numpy()

    return fe.FrontParams(
        enc_w=f64(w.enc_w),
        enc_b=f64(w.enc_b),
        spark_w1=f64(w.spark_w1),
        spark_b1=f64(w.spark_b1),
        spark_w2=f64(w.spark_w2),
        spark_b2=f64(w.spark_b2),
        spark_scale=float(w.spark_scale.detach().cpu()),
        init_w=f64(w.init_w),
        init_b=f64(w.init_b),
        out_w=f64(w.out_w),
        out_b=f64(w.out_b),
        node_out=f64(w.node_out),
        skip_w=f64(w.skip_w),
        skip_b=f64(w.skip_b),
        pos=f64(graph.x),
        conf=f64(graph.a),
        sigma=float(hp.sigma_ign),
        eps=float(hp.eps_active),
        cap=int(hp.cap),
        init_state=hp.init_state,
        method=hp.selection,
    )


def simulator(
    model: RsgnChip,
    coding: Coding,
    syn: Synapses,
    layout: Layout,
    profile: nm.HardwareProfile,
    options: NeuromorphicOptions,
    net: nm.Network | None = None,
) -> nm.Simulator:
    """The chip for a coding: every compartment runs the chip program ``model``."""
    if net is None:
        syn_list = nm.SynapseList.from_arrays(syn.src, syn.dst, coding.weights, syn.n_neurons)
        net = network(syn, syn_list, model, layout.placement)
    cfg = nm.SimConfig(
        precision="fixed" if coding.fixed else "float",
        payload=coding.payload,
        idle_policy=options.idle_policy,
        noc=options.noc,
        seed=options.seed,
        record="none",
        buffer_packets=options.buffer_packets,
        noc_quantum_ns=options.noc_quantum_ns,
    )
    try:
        return nm.Simulator(net, profile, layout.topology, cfg)
    except nm.NeuromorphicError as exc:
        raise RsgnError(f"preset {profile.name}: {exc}") from None


class NeuromorphicProgram(Program):
    """An RSGN mapped onto the chip (module docstring); build with :func:`prepare_program`."""

    target = "neuromorphic"

    def __init__(
        self,
        *,
        spec: ModelSpec,
        options: NeuromorphicOptions,
        profile: nm.HardwareProfile,
        graph: Graph,
        params: NodeParams,
        front: fe.FrontParams,
        synapses: Synapses,
        layout: Layout,
        coding: Coding,
        sim: nm.Simulator,
        table: EnergyTable,
    ) -> None:
        self.spec = spec
        self.options = options
        self.profile = profile
        self.graph = graph
        self.params = params
        self.front = front
        self.synapses = synapses
        self.layout = layout
        self.coding = coding
        self.sim = sim
        self.table = table

    @property
    def payload_scales(self) -> np.ndarray | None:
        """Per-channel payload LSBs (d state channels, then the gate); None when exact."""
        return None if self.coding.bits is None else self.coding.chan_scale.copy()

    @property
    def n_sim_steps(self) -> int:
        """Simulator steps of one inference: ignition, the first emission, n_steps steps."""
        return self.spec.hyper.n_steps + 2

    def run_chip(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> list[Inference]:
        """Every sample of ``x`` [B, T, F_in] as one inference on the chip.

        ``lengths`` [B] (None: every step is real): the host streams only the L_b real tokens
        x_{t < L_b} of sample b; padded steps never reach the chip. This is the definition's
        masking (:func:`rsgn.ops.length_mask`): with padded inputs zeroed before the 'same'
        convolution, padded sparks replaced by s_0 (no ignition) and padded steps left out of
        'attend', 'mean' and the skip path's max, the forward pass equals the one on the
        unpadded sequence, which is what the chip runs."""
        xs = x.detach().cpu().double().numpy()
        bsz, t = xs.shape[0], xs.shape[1]
        lens = check_lengths(lengths, bsz, t)
        out = []
        for b in range(bsz):
            log = InferenceLog(x=xs[b, : lens[b]], n_steps=self.spec.hyper.n_steps)
            run = self.sim.run(n_steps=self.n_sim_steps, context=log)
            out.append(Inference(run, log))
        return out

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Report]:
        t0 = time.perf_counter()
        infs = self.run_chip(x, lengths)
        logits = torch.from_numpy(np.stack([inf.log.logits for inf in infs])).to(
            device=x.device, dtype=torch.float32
        )
        wall = time.perf_counter() - t0
        return logits, self._report(infs, wall)

    def _report(self, infs: list[Inference], wall: float) -> Report:
        bsz = len(infs)
        n = self.spec.hyper.n_nodes
        ledger = CostLedger(self.table)
        for inf in infs:
            cost.charge_run(ledger, inf.run)
        steps = self.spec.hyper.n_steps + 1
        counts = [sum(inf.log.active_counts[t] for inf in infs) for t in range(steps)]
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
                "simulated chip time per inference (SimPy: per-core processes, event-driven "
                "mesh, barriers): host input, front end, ignition, propagation steps with "
                "their selection rounds, readout, host output",
                self._timing_sources(),
            ),
            latency_per_inference=lat,
            ledger=ledger,
            energy_model=cost.MODEL,
            details=details(self, infs),
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
        (larger values saturate). Quantised modes only. This program is unchanged."""
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
        peak = np.zeros(self.params.d)
        for inf in probe.run_chip(x):
            peak = np.maximum(peak, inf.log.peak)
        return self._with(self.coding.with_scales(peak_scales(peak, bits, headroom)), self.options)

    def _with(self, coding: Coding, options: NeuromorphicOptions) -> NeuromorphicProgram:
        """This mapping with another coding (a new simulator on the same placement)."""
        model = RsgnChip(self.params, self.front, coding, self.layout, chip_config(options))
        sim = simulator(model, coding, self.synapses, self.layout, self.profile, options)
        return NeuromorphicProgram(
            spec=self.spec,
            options=options,
            profile=self.profile,
            graph=self.graph,
            params=self.params,
            front=self.front,
            synapses=self.synapses,
            layout=self.layout,
            coding=coding,
            sim=sim,
            table=self.table,
        )


def chip_config(options: NeuromorphicOptions) -> ChipConfig:
    return ChipConfig(selection=options.selection, select_bits=options.select_bits)


@torch.no_grad()
def prepare_program(spec: ModelSpec, options: NeuromorphicOptions) -> NeuromorphicProgram:
    """Map ``spec`` onto the chip of ``options`` (module docstring)."""
    spec = spec.to("cpu")
    profile = options.profile()
    core = profile.chip.core
    graph = build_graph(spec.weights, spec.hyper)
    params = node_params(spec, graph)
    front = front_params(spec, graph)
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

    def model_for(layout: Layout) -> RsgnChip:
        return RsgnChip(params, front, coding, layout, chip_config(options))

    layout, net = place(
        tangent_coords(graph),
        syn,
        syn_list,
        model_for,
        profile,
        nodes_per_core=options.nodes_per_core,
        node_split=options.node_split,
        chips=options.chips,
    )
    sim = simulator(net.groups[0].model, coding, syn, layout, profile, options, net)
    return NeuromorphicProgram(
        spec=spec,
        options=options,
        profile=profile,
        graph=graph,
        params=params,
        front=front,
        synapses=syn,
        layout=layout,
        coding=coding,
        sim=sim,
        table=cost.energy_table(profile),
    )
