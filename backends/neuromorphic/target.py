"""The neuromorphic target: RSGN on a simulated event-driven chip (``rsgn.neuromorphic``).

The chip runs the whole inference with its own program (:mod:`.chip_program`): the front end,
ignition and initial states (:mod:`.front_end`), every propagation step's node program
(:mod:`.node_program`: soft threshold, inhibition, the exact k-winners as reduction rounds over
the NoC, the LayerNorm update, the W_h projection) and the readout; the host only streams the
tokens in and reads the logits out. Agreement with the torch reference is measured, never
assumed: float mode with exact payloads promises float precision
(:attr:`NeuromorphicBackend.REFERENCE_TOL`); quantised, fixed, sigma-delta and local-selection
modes report what they lose.

Modules: :mod:`.options` (typed options), :mod:`.mapping` (compartments, synapses, placement,
node split), :mod:`.coding` (payload width and LSBs), :mod:`.node_program` and
:mod:`.front_end` (the numpy arithmetic), :mod:`.chip_program` (the program as the
simulator's neuron model), :mod:`.traffic` (its communication phases), :mod:`.cost` (events ->
ledger and breakdown), :mod:`.report` (details), :mod:`.program` (prepare and run).
"""

from __future__ import annotations

from rsgn import neuromorphic as nm
from rsgn.backends.base import Backend, Capabilities, NotAvailable
from rsgn.backends.neuromorphic.options import NeuromorphicOptions
from rsgn.backends.neuromorphic.program import NeuromorphicProgram, prepare_program
from rsgn.errors import RsgnError
from rsgn.spec import ModelSpec


class NeuromorphicBackend(Backend):
    """RSGN on a simulated Loihi 2 / SpiNNaker 2-like chip (see the module docstring)."""

    name = "neuromorphic"
    summary = "simulated event-driven chip (SimPy): the whole inference on the chip"
    Options = NeuromorphicOptions
    REFERENCE_TOL = 1e-4
    """Largest |logit - torch logit| / max |torch logit| promised in float mode with exact
    payloads and the exact selection (float64 chip arithmetic against the float32 reference;
    measured ~1e-6). One known exception, measured in the tests: where scores (or ignition
    distances) lie within a float32 ulp of the cap's k-th one (untrained or barely trained
    models, one theta for all nodes), the float32 reference ties them (lowest ids win) and the
    float64 chip orders them."""

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
            reference_tol=self.REFERENCE_TOL
            if self.options.exact and self.options.selection == "exact"
            else None,
            notes="float mode: the chip's float64 program may pick other winners than the "
            "float32 reference where scores tie at float32 precision; latency: the simulated "
            "time of the whole inference on the chip (host input to host output); energy: "
            "counted chip events x the preset's per-event energies + static power x latency; "
            "wall time: the simulation's own speed",
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
        return prepare_program(spec, self.options)


def _graded(preset: str) -> bool:
    return nm.load_preset(preset).chip.core.max_payload_bits >= 2
