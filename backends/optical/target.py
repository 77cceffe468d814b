"""The optical target: a trained RSGN on a simulated hybrid opto-electronic Poincaré core.

Physics comes from :mod:`rsgn.optics` (numpy, float64); what the offload map leaves electronic
is :mod:`rsgn.ops` (torch), called explicitly and charged with the electronic cost model.

``prepare(spec)`` maps the spec once (:class:`OpticalProgram`): the system is laid out for the
model's N nodes (:mod:`.system`: fan-out, link budget, device counts, precision; regimes
checked), the nodes become readout channels (:mod:`.mapping`; static device errors drawn once
per (seed, program)), and with ``graph = 'optical'`` the graph's edge distances are read through
them once (:func:`.readings.edge_distances`) and turned into edge weights by
:func:`rsgn.ops.graph` (the one definition every target shares). This programming cost is
reported apart, in ``details['programming']``; the node devices' setting energy is also spread
over the ``reuse`` inferences that share it.

``program(x)`` builds the call's own op table (:class:`.calls.CallOps`: ignition and
'attend' distances read through the core, optionally an optical activation; detector noise
per sample from its own seeded stream, so results depend neither on the batch nor on the calls
before), runs :func:`rsgn.forward.forward` with it, charges the counted events
(:func:`.cost.charge_call`) and models the per-inference latency (:func:`.cost.call_latency`);
the simulation's own wall time is ``wall_time``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from rsgn import ops, optics
from rsgn.backends.base import (
    Backend,
    Capabilities,
    Measured,
    Modelled,
    NotAvailable,
    Program,
    Report,
)
from rsgn.backends.cost import CostLedger
from rsgn.backends.optical import cost, mapping, readings
from rsgn.backends.optical.activation import LogPowerActivation
from rsgn.backends.optical.calls import CallOps, Core
from rsgn.backends.optical.options import OpticalOptions
from rsgn.backends.optical.system import System, build_system, resolve_precision
from rsgn.errors import RsgnError
from rsgn.forward import Trace, build_graph, forward, node_positions
from rsgn.spec import ModelSpec

REFERENCE_TOL = 1e-5
"""Relative logit agreement with torch promised on ideal physics (noise, device errors and
quantisation off, no extinction-ratio cap, electronic activation): float64 optics, float32
electronics."""
WALL_HOW = "wall clock of the simulation on this machine (numpy optics, torch electronics)"


class OpticalProgram(Program):
    """A spec mapped onto the core: channels programmed and (optical graph) the edge distances
    read once; each call runs with its own op table (module docstring)."""

    target = "optical"

    def __init__(
        self,
        spec: ModelSpec,
        options: OpticalOptions,
        preset: optics.OpticalPreset,
        activation: LogPowerActivation | None,
    ) -> None:
        device = torch.device(options.device) if options.device else spec.device
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RsgnError(f"device {options.device!r} asked for but no CUDA GPU is available")
        self.spec = spec.to(device)
        self.device = device
        self.options = options
        self.preset = preset
        self.offload = options.offload
        self.activation = activation
        noise, seed = options.noise_on, options.seed
        w, hp = self.spec.weights, self.spec.hyper
        self.system: System = system_for(spec, options, preset)
        self.energy = cost.energy_table(self.system, activation)
        x, a = node_positions(w)
        nodes = mapping.ball_parts(x, a)
        optical = "optical" in (self.offload["graph"], self.offload["ignite"])
        self.channels = (
            mapping.program_channels(nodes, preset, noise=noise, seed=seed) if optical else None
        )
        receiver = readings.Receiver(preset, noise, self.system.channel_power)
        self.edge_distances: torch.Tensor | None = None
        """The graph's edge distances as read through the core [N, K] (optical graph)."""
        table = ops.TABLE
        if self.offload["graph"] == "optical":
            d = readings.edge_distances(
                receiver, self.channels, nodes, w.in_idx.cpu().numpy(), seed
            )
            self.edge_distances = torch.as_tensor(d, dtype=x.dtype, device=x.device)
            table = ops.make_table(edge_distances=self._measured_edges)
        with torch.no_grad():
            self.graph = build_graph(w, hp, table)
        self.core = Core(
            receiver,
            self.channels,
            activation,
            seed,
            self.offload["ignite"] == "optical",
            options.attend == "keep",
        )
        self.programming = CostLedger(self.energy)
        cost.charge_programming(self.programming, self.spec, self.graph, self.offload, self.system)
        self.programming_latency = cost.programming_latency(self.spec, preset, self.offload)

    def _measured_edges(
        self, x: torch.Tensor, a: torch.Tensor, in_idx: torch.Tensor
    ) -> torch.Tensor:
        """The graph op's distances: those read through the core at prepare."""
        del x, a, in_idx
        return self.edge_distances

    def call_ops(self, x: torch.Tensor) -> CallOps:
        """The primitives of one call on inputs ``x`` (their noise streams, a fresh counter)."""
        return CallOps(self.core, self.spec.hyper, readings.sample_digests(x))

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Report]:
        x = x.to(self.device)
        lengths = None if lengths is None else lengths.to(self.device)
        t0 = time.perf_counter()
        calls = self.call_ops(x)
        trace = Trace()
        out = forward(
            self.spec.weights,
            self.spec.hyper,
            x,
            calls.table(),
            graph=self.graph,
            trace=trace,
            lengths=lengths,
        )
        dt = time.perf_counter() - t0
        lat = cost.call_latency(
            self.spec, self.preset, self.offload, self.graph, trace, calls.counter, self.activation
        )
        ledger = CostLedger(self.energy)
        cost.charge_call(
            ledger,
            self.spec,
            self.graph,
            trace,
            calls.counter,
            self.offload,
            self.system,
            activation=self.activation,
            schedule=self.options.schedule,
            latency_s=sum(lat.values()),
            reuse=self.options.reuse,
        )
        n = int(x.shape[0])
        consts = cost.latency_constants(self.preset)
        return out.logits, Report(
            target=self.target,
            preset=self.options.preset,
            n_samples=n,
            active_fraction_per_step=[float(f) for f in out.active_fraction_per_step],
            wall_time=Measured(dt, "s", WALL_HOW),
            latency=Modelled(
                sum(lat.values()),
                "s",
                cost.LATENCY_MODEL,
                tuple(sorted({c["source"] for c in consts.values()})),
            ),
            ledger=ledger,
            energy_model=cost.MODEL,
            energy_measured=NotAvailable("simulated hardware has no power counter"),
            details=self._details(
                ledger, n, lat, consts, cost.mac_equivalents(self.spec, trace, calls.counter)
            ),
        )

    def _details(self, ledger: CostLedger, n: int, lat: dict, consts: dict, macs: float) -> dict:
        prog = self.programming
        by_op = ledger.energy_by_op()
        core = sum(by_op.get(op, 0.0) for op in cost.OPTICAL_CORE_OPS)
        out = {
            "optics_preset": self.preset.name,
            "noise": self.options.noise_on,
            "seed": self.options.seed,
            "offload": dict(self.offload),
            "schedule": self.options.schedule,
            "reuse": self.options.reuse,
            "system": self.system.summary(),
            "energy_j_by_domain_per_inference": {
                k: v / max(1, n) for k, v in cost.energy_by_domain(ledger).items()
            },
            "optical_core_energy_j_per_inference": core / max(1, n),
            "mac_equivalents_per_inference": macs / max(1, n),
            "latency_s_per_inference_by_part": lat,
            "latency_constants": consts,
            "programming": {
                "energy_j": prog.energy_j(),
                "energy_j_by_event": prog.energy_by_event(),
                "counts": prog.totals(),
                "latency_s": sum(self.programming_latency.values()),
            },
        }
        if self.channels is not None:
            out["nodes_clipped_by_extinction_ratio"] = int(np.sum(self.channels.clipped))
        return out


class OpticalBackend(Backend):
    """Hybrid opto-electronic Poincaré core (see the module docstring); options:
    :class:`~.options.OpticalOptions`."""

    name = "optical"
    summary = (
        "simulated opto-electronic Poincaré core: distances read through polarisation optics, "
        "electronics costed; modelled energy and latency"
    )
    Options = OpticalOptions
    options: OpticalOptions

    def __init__(self, options: OpticalOptions | None = None) -> None:
        super().__init__(options)
        self.preset = self.options.load()
        mode = self.options.propagate
        self.activation = (
            LogPowerActivation.calibrate(mode, self.preset) if mode in ("eit", "sbs") else None
        )

    def capabilities(self) -> Capabilities:
        o = self.options
        capped = math.isfinite(self.preset.node.extinction_ratio)  # the ER clips nodes
        exact = not o.noise_on and not capped and o.propagate == "electronic"
        return Capabilities(
            trains=False,
            devices=("cpu", "cuda") if torch.cuda.is_available() else ("cpu",),
            metrics={
                "latency": "modelled",
                "latency_distribution": NotAvailable(
                    "the modelled critical path is the same for every inference of a batch"
                ),
                "energy": "modelled",
                "energy_measured": NotAvailable("simulated hardware has no power counter"),
            },
            reference_tol=REFERENCE_TOL if exact else None,
            notes=(
                f"optics preset {self.preset.name!r}, noise {'on' if o.noise_on else 'off'}, "
                + ", ".join(f"{k}={v}" for k, v in o.offload.items())
                + "; activation "
                + (f"optical {o.propagate.upper()}" if self.activation else "electronic sigmoid")
                + f"; electronics {resolve_precision(o.precision, self.preset).name}, "
                f"schedule {o.schedule}, attend {o.attend}; not differentiable (numpy physics)"
            ),
        )

    def check(self, spec: ModelSpec) -> None:
        """The system for this model within its regimes (fan-out, link budget, timing, WDM)."""
        system_for(spec, self.options, self.preset)

    def prepare(self, spec: ModelSpec) -> OpticalProgram:
        return OpticalProgram(spec, self.options, self.preset, self.activation)


def system_for(spec: ModelSpec, options: OpticalOptions, preset: optics.OpticalPreset) -> System:
    """The architecture the options lay out for ``spec`` (:func:`.system.build_system`)."""
    hp = spec.hyper
    return build_system(
        preset,
        hp.n_nodes,
        hp.d_space,
        fanout=options.fanout,
        wavelengths=options.wavelengths,
        precision=options.precision,
    )
