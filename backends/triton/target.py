"""The triton target: the :mod:`rsgn.ops` composition with Triton kernels for the hot inner
primitives (:mod:`.primitives`) and the fused propagation step (:mod:`.fused`).

``ops`` is the training table (kernels with backward; the fused step's gradient is the
reference decomposition recomputed). ``prepare`` builds the graph once with the kernels and
binds the fused kernels' graph tables to it; each call runs :func:`rsgn.forward.forward` with
that table, traces it and charges the trace with this target's cost model (:mod:`.cost`: the
electronic model plus the fused step's recomputation). Latency is the measured wall time of
the call per inference: CUDA-synchronised on a GPU, or the wall clock of Triton's CPU
interpreter (``TRITON_INTERPRET=1``: slow, for tests; its times are not GPU times).

Runs on CUDA, or on the CPU under the interpreter. ``fast_tanh`` takes PTX
``tanh.approx.f32`` for the gate on CUDA (ignored by the interpreter).
"""

from __future__ import annotations

import os
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
from rsgn.backends.cost import CostLedger, load_energy_table
from rsgn.backends.options import TargetOptions
from rsgn.backends.triton import cost
from rsgn.errors import RsgnError
from rsgn.forward import Trace, build_graph, forward
from rsgn.ops import OpTable
from rsgn.spec import ModelSpec

REFERENCE_TOL = 1e-5
"""Promised max |logit - torch logit| / max |torch logit|: float32 sums in other orders (the
message sum pulls per row, the fused step recomputes h~); the winners are the same unless two
scores tie at the cap to float32 rounding."""
INTERPRETER_HOW = "wall clock under the Triton CPU interpreter (TRITON_INTERPRET=1)"


def interpreting() -> bool:
    """True when Triton runs its kernels in the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def wall_clock_how(device: torch.device) -> str:
    """How this target's wall times are measured on ``device``."""
    if device.type == "cuda":
        return f"wall clock, CUDA-synchronised ({torch.cuda.get_device_name(device)})"
    return INTERPRETER_HOW


@dataclass
class TritonOptions(TargetOptions):
    """Options of the triton target."""

    preset: str = "electronic_45nm"
    device: str | None = None
    """cpu (under TRITON_INTERPRET=1), cuda, cuda:N; None: cuda if present, else cpu."""
    fast_tanh: bool = False
    """PTX tanh.approx.f32 in the gate on CUDA (relative error ~2^-11; not yet timed)."""
    fused: bool = True
    """The fused step (four launches) for radix selection on float32; else op by op."""
    PRESETS: ClassVar[tuple[str, ...]] = ("electronic_45nm",)
    TARGET: ClassVar[str] = "triton"

    def validate(self) -> None:
        super().validate()
        if self.device is not None and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise RsgnError(f"triton option 'device': {self.device!r} is not cpu, cuda or cuda:N")


def resolve_device(name: str | None) -> torch.device:
    """The device the kernels run on: ``name``, else CUDA if present, else the CPU (which
    needs the interpreter)."""
    dev = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RsgnError(f"device {name!r} asked for but no CUDA GPU is available")
    if dev.type == "cpu" and not interpreting():
        raise RsgnError("the triton target runs on the CPU only under TRITON_INTERPRET=1")
    return dev


class TritonProgram(Program):
    """The spec on the triton target: the graph and the fused kernels' graph tables built
    once, costs counted per call."""

    target = "triton"

    def __init__(self, spec: ModelSpec, device: torch.device, options: TritonOptions) -> None:
        from rsgn.backends.triton.fused import fused_applies, graph_tables
        from rsgn.backends.triton.primitives import kernel_table

        self.spec = spec.to(device)
        self.device = device
        self.preset = options.preset
        self.energy_table = load_energy_table(options.preset)
        hp = self.spec.hyper
        self.fused = options.fused and fused_applies(hp.selection, self.spec.weights.h_w.dtype)
        plain = kernel_table(fast_tanh=options.fast_tanh, fused=False)
        with torch.no_grad():
            self.graph = build_graph(self.spec.weights, hp, plain)
        tables = graph_tables(self.graph) if self.fused else None
        self.table = kernel_table(fast_tanh=options.fast_tanh, fused=self.fused, tables=tables)

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Report]:
        x = x.to(self.device)
        lengths = None if lengths is None else lengths.to(self.device)
        trace = Trace()
        cuda = x.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(x.device)
        t0 = time.perf_counter()
        out = forward(
            self.spec.weights,
            self.spec.hyper,
            x,
            self.table,
            graph=self.graph,
            trace=trace,
            lengths=lengths,
        )
        if cuda:
            torch.cuda.synchronize(x.device)
        dt = time.perf_counter() - t0
        ledger = CostLedger(self.energy_table)
        recomputed = cost.charge_run(ledger, self.spec, self.graph, trace, fused=self.fused)
        how = wall_clock_how(self.device)
        n = int(x.shape[0])
        return out.logits, Report(
            target=self.target,
            preset=self.preset,
            n_samples=n,
            active_fraction_per_step=[float(f) for f in out.active_fraction_per_step],
            wall_time=Measured(dt, "s", how),
            latency=Measured(dt / max(1, n), "s", f"{how}, batch time / batch size"),
            ledger=ledger,
            energy_model=cost.MODEL,
            energy_measured=NotAvailable(
                "the triton target reads no power counter (studies/gpu_kernels/bench.py reads "
                "NVML on a GPU)"
            ),
            details={"fused_step": self.fused, "recomputed_in_edges_per_step": recomputed},
        )


class TritonBackend(Backend):
    """Triton kernels for the graph distances, ignition's selection pass, select, the message
    sum and the soft threshold, and the fused step; :mod:`rsgn.ops` composes them."""

    name = "triton"
    summary = "Triton GPU kernels (CUDA, or the CPU interpreter), differentiable; fused step"
    Options = TritonOptions

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not (torch.cuda.is_available() or interpreting()):
            return False, "needs a CUDA GPU, or TRITON_INTERPRET=1 to run the kernels on the CPU"
        try:
            import triton  # noqa: F401
        except ImportError as exc:
            return False, f"triton is not installed ({exc}); pip install 'triton>=3.0'"
        return True, ""

    @classmethod
    def emulated(cls) -> str | None:
        """Without CUDA the kernels run in Triton's CPU interpreter, far slower than on a GPU."""
        if torch.cuda.is_available():
            return None
        return "Triton kernels under the CPU interpreter (TRITON_INTERPRET=1), not on a GPU"

    def capabilities(self) -> Capabilities:
        cuda = torch.cuda.is_available()
        clock = "wall clock, CUDA-synchronised" if cuda else INTERPRETER_HOW + ", not a GPU time"
        return Capabilities(
            trains=True,
            devices=("cuda",) if cuda else ("cpu (TRITON_INTERPRET=1)",),
            metrics={
                "latency": "measured",
                "latency_distribution": NotAvailable(
                    "one wall-clock time per batch, not per inference"
                ),
                "energy": "modelled",
                "energy_measured": NotAvailable("the triton target reads no power counter"),
            },
            reference_tol=REFERENCE_TOL,
            notes=(
                f"latency: {clock}; Triton kernels for graph distances, ignition selection, "
                "select, message sum, soft threshold and the fused step, composed by rsgn.ops; "
                "energy: the electronic cost model plus the fused step's recomputation"
            ),
        )

    @property
    def ops(self) -> OpTable:
        from rsgn.backends.triton.primitives import kernel_table

        return kernel_table(fast_tanh=self.options.fast_tanh, fused=self.options.fused)

    def prepare(self, spec: ModelSpec) -> TritonProgram:
        return TritonProgram(spec, resolve_device(self.options.device), self.options)
