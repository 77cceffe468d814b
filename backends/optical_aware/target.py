"""The optical-aware target: training with differentiable surrogates of the optical core.

``ops`` is the reference composition (:func:`rsgn.ops.make_table`) with the distances the
optical target reads through its core (the graph's edge distances, ignition, the 'attend'
distances) replaced by surrogates of the core's non-idealities (:mod:`.surrogate`), constants
from the same optics preset, noise from a torch Generator seeded with ``seed`` at construction
(the training noise stream: each forward pass draws fresh noise from it).

``prepare(spec)`` evaluates the model *as it trains*: the spec through the surrogate table,
the graph's surrogate distances drawn once (generator seeded by ``seed``), then every sample on
its own with noise from a generator seeded by (``seed``, digest of the sample's input), so
results depend neither on the batch nor on the calls before. It is a digital computation of a
noisy model: its cost is the electronic model's (:mod:`rsgn.backends.torch.cost`), its latency
the measured wall time per sample. The optical target (``optical``) is the core itself.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import ClassVar

import torch

from rsgn.backends.base import (
    Backend,
    Capabilities,
    Measured,
    NotAvailable,
    Program,
    Report,
)
from rsgn.backends.cost import CostLedger
from rsgn.backends.optical.options import OpticsChoice
from rsgn.backends.optical.readings import sample_digests
from rsgn.backends.optical_aware.surrogate import SurrogateReadout, surrogate_table
from rsgn.backends.torch import cost
from rsgn.errors import RsgnError
from rsgn.forward import Trace, build_graph, forward
from rsgn.ops import OpTable
from rsgn.spec import ModelSpec

REFERENCE_TOL = 1e-5
"""Relative logit agreement with torch promised with noise off and no extinction-ratio cap."""
STREAM_GRAPH = 1
STREAM_SAMPLE = 2


def generator(seed: int, stream: int = 0, digest: int = 0) -> torch.Generator:
    """A CPU Generator seeded by (seed, stream, digest) (63 bits of their blake2b)."""
    key = hashlib.blake2b(f"{seed}:{stream}:{digest}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(key, "little") >> 1)


@dataclass
class OpticalAwareOptions(OpticsChoice):
    """Options of the optical-aware target (the optics preset its surrogates model)."""

    preset: str = "bench"
    TARGET: ClassVar[str] = "optical-aware"


def _pad(t: torch.Tensor, width: int, value: int | bool) -> torch.Tensor:
    if t.shape[1] == width:
        return t
    pad = torch.full((t.shape[0], width - t.shape[1]), value, dtype=t.dtype, device=t.device)
    return torch.cat([t, pad], 1)


def merge_traces(traces: list[Trace]) -> Trace:
    """One trace of the samples of ``traces`` run one by one (active sets padded, stacked)."""
    out = Trace(batch=sum(t.batch for t in traces), tokens=traces[0].tokens)
    for step in range(len(traces[0].states)):
        width = max(t.states[step][0].shape[1] for t in traces)
        ids = torch.cat([_pad(t.states[step][0], width, 0) for t in traces])
        valid = torch.cat([_pad(t.states[step][1], width, False) for t in traces])
        out.states.append((ids, valid))
    return out


class OpticalAwareProgram(Program):
    """The spec through the surrogate table, sample by sample (module docstring)."""

    target = "optical-aware"

    def __init__(self, spec: ModelSpec, options: OpticalAwareOptions, readout: SurrogateReadout):
        device = torch.device(options.device) if options.device else spec.device
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RsgnError(f"device {options.device!r} asked for but no CUDA GPU is available")
        self.spec = spec.to(device)
        self.device = device
        self.options = options
        self.readout = readout
        self.energy = cost.electronic_table()
        table = surrogate_table(readout, generator(options.seed, STREAM_GRAPH))
        with torch.no_grad():
            self.graph = build_graph(self.spec.weights, self.spec.hyper, table)

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Report]:
        x = x.to(self.device)
        lengths = None if lengths is None else lengths.to(self.device)
        w, hp, seed = self.spec.weights, self.spec.hyper, self.options.seed
        logits, fractions, traces, times = [], [], [], []
        t0 = time.perf_counter()
        for b, digest in enumerate(sample_digests(x)):
            ts = time.perf_counter()
            table = surrogate_table(self.readout, generator(seed, STREAM_SAMPLE, digest))
            trace = Trace()
            lb = None if lengths is None else lengths[b : b + 1]
            out = forward(w, hp, x[b : b + 1], table, graph=self.graph, trace=trace, lengths=lb)
            logits.append(out.logits)
            fractions.append(out.active_fraction_per_step)
            traces.append(trace)
            times.append(time.perf_counter() - ts)
        dt = time.perf_counter() - t0
        n = int(x.shape[0])
        ledger = CostLedger(self.energy)
        if n:
            cost.charge_run(ledger, self.spec, self.graph, merge_traces(traces))
        how = "wall clock of the surrogate evaluation on this machine, one sample at a time"
        return torch.cat(logits), Report(
            target=self.target,
            preset=self.options.preset,
            n_samples=n,
            active_fraction_per_step=[sum(f) / max(1, n) for f in zip(*fractions, strict=True)],
            wall_time=Measured(dt, "s", how),
            latency=Measured(sum(times) / max(1, n), "s", how),
            latency_per_inference=times,
            ledger=ledger,
            energy_model=cost.MODEL + " (the surrogate model computed digitally)",
            details={"noise": self.readout.noise, "seed": seed},
        )


class OpticalAwareBackend(Backend):
    """Training target: the reference ops with differentiable surrogates of the optical core's
    distance readout (module docstring); options: :class:`OpticalAwareOptions`."""

    name = "optical-aware"
    summary = (
        "torch ops with differentiable surrogates of the optical core's readout (extinction "
        "ratio, device errors, detector noise, ADC): hardware-aware training"
    )
    Options = OpticalAwareOptions
    options: OpticalAwareOptions

    def __init__(self, options: OpticalAwareOptions | None = None) -> None:
        super().__init__(options)
        self.readout = SurrogateReadout.from_preset(self.options.load(), self.options.noise_on)
        self._ops = surrogate_table(self.readout, generator(self.options.seed))

    @property
    def ops(self) -> OpTable:
        """The training table; its Generator is the training noise stream."""
        return self._ops

    def capabilities(self) -> Capabilities:
        exact = not self.readout.noise and self.readout.r_max >= 1.0
        return Capabilities(
            trains=True,
            devices=("cpu", "cuda") if torch.cuda.is_available() else ("cpu",),
            metrics={
                "latency": "measured",
                "latency_distribution": "measured",
                "energy": "modelled",
                "energy_measured": NotAvailable("the surrogate runs in torch; no power counter"),
            },
            reference_tol=REFERENCE_TOL if exact else None,
            notes=(
                f"torch ops with surrogate optical readout (preset {self.options.preset!r}, "
                f"noise {'on' if self.readout.noise else 'off'}): extinction-ratio radius clip, "
                "angle/retardance rotation, detector noise, straight-through ADC quantisation"
            ),
        )

    def prepare(self, spec: ModelSpec) -> OpticalAwareProgram:
        return OpticalAwareProgram(spec, self.options, self.readout)
