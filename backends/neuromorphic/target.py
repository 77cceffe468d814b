"""The neuromorphic target: RSGN on a simulated event-driven chip (``rsgn.neuromorphic``).

The chip runs the whole propagation with its own node program (:mod:`.node_program`): message
passing over the mesh, soft threshold, inhibition, the exact k-winners selection, the update
and the payload projection. The host (a conventional processor beside the chip) runs the
front end, ignition and the readout with :mod:`rsgn.ops`, charged with the electronic cost
model. Agreement with the torch reference is measured, never assumed: float mode with exact
payloads promises float precision (:attr:`NeuromorphicBackend.REFERENCE_TOL`); quantised, fixed
and sigma-delta modes report what they lose.

Modules: :mod:`.options` (typed options), :mod:`.mapping` (compartments, synapses, placement,
node split), :mod:`.coding` (payload width and LSBs), :mod:`.node_program` (the numpy node
program), :mod:`.chip_node` (the node program as a neuron model of the simulator),
:mod:`.traffic` (projection, k-winners reductions, split-node exchange), :mod:`.host` (host
work), :mod:`.cost` (events -> ledger), :mod:`.report` (details), :mod:`.program` (prepare
and run).
"""

from __future__ import annotations

import torch

from rsgn import neuromorphic as nm
from rsgn.backends.base import Backend, Capabilities, NotAvailable
from rsgn.backends.neuromorphic.options import NeuromorphicOptions
from rsgn.backends.neuromorphic.program import NeuromorphicProgram, prepare_program
from rsgn.errors import RsgnError
from rsgn.spec import ModelSpec


def _device(name: str | None, default: torch.device) -> torch.device:
    if name is None:
        return default
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RsgnError(f"device {name!r} asked for but no CUDA GPU is available")
    return torch.device(name)


class NeuromorphicBackend(Backend):
    """RSGN on a simulated Loihi 2 / SpiNNaker 2-like chip (see the module docstring)."""

    name = "neuromorphic"
    summary = "simulated event-driven chip (SimPy): the node program and k-winners on the chip"
    Options = NeuromorphicOptions
    REFERENCE_TOL = 1e-4
    """Largest |logit - torch logit| / max |torch logit| promised in float mode with exact
    payloads (float64 chip arithmetic against the float32 reference; measured ~1e-7). One
    known exception, measured in the tests: where candidates' scores lie within a float32 ulp
    of the cap's k-th score (untrained or barely trained models, one theta for all nodes), the
    float32 reference ties them (lowest ids win) and the float64 chip orders them."""

    options: NeuromorphicOptions

    def capabilities(self) -> Capabilities:
        return Capabilities(
            trains=False,
            devices=("cpu",),
            metrics={
                "latency": "modelled",
                "latency_distribution": "modelled",
                "energy": "modelled",
                "energy_measured": NotAvailable("a simulated chip has no power counter"),
            },
            reference_tol=self.REFERENCE_TOL if self.options.exact else None,
            notes="float mode: the chip's float64 node program may pick other winners than "
            "the float32 reference where scores tie at float32 precision; latency: SimPy chip "
            "time per inference (+ projection, k-winners reductions, "
            "split-node exchange), host work not timed; energy: counted chip events x the "
            "preset's per-event energies + static power x latency + host events x "
            "electronic_45nm; wall time: the simulation's own speed",
        )

    def check(self, spec: ModelSpec) -> None:
        """Refuse, before any work, what the chip cannot run: binary-spike presets (RSGN sends
        graded payloads), a payload wider than the chip's, a node split wider than a node,
        a model without propagation steps."""
        opts = self.options
        prof = opts.profile()
        core = prof.chip.core
        if core.max_payload_bits < 2:
            raise RsgnError(
                f"preset {prof.name} sends binary spikes only (core.max_payload_bits "
                f"{core.max_payload_bits}); RSGN's graded payloads need a graded-spike chip "
                f"({', '.join(p for p in nm.list_presets() if _graded(p))})"
            )
        if opts.payload_bits is not None and opts.payload_bits > core.max_payload_bits:
            raise RsgnError(
                f"payload_bits {opts.payload_bits} > preset {prof.name}'s max_payload_bits "
                f"{core.max_payload_bits}"
            )
        c = spec.hyper.d_hidden + 1
        if opts.node_split is not None and opts.node_split > c:
            raise RsgnError(
                f"node_split {opts.node_split} > {c} compartments per node (d_hidden "
                f"{spec.hyper.d_hidden} + gate)"
            )
        if spec.hyper.n_steps < 1:
            raise RsgnError("the neuromorphic target needs n_steps >= 1 (the chip's steps)")

    def prepare(self, spec: ModelSpec) -> NeuromorphicProgram:
        self.check(spec)
        return prepare_program(spec, self.options, _device(self.options.device, spec.device))


def _graded(preset: str) -> bool:
    return nm.load_preset(preset).chip.core.max_payload_bits >= 2
