"""The torch target: the reference definition (:mod:`rsgn.ops`) on the CPU or a CUDA GPU.

``ops`` is the op table the target trains and evaluates with: with ``compile = 'numba'`` (the
default) :func:`rsgn.backends.torch.compiled.compiled_table`, the definition with the
propagation step, the nearest-spark search and the ignition select run by numba CPU kernels
on CPU tensors (the definition itself on CUDA tensors); with ``compile = 'eager'``
:data:`rsgn.ops.TABLE` itself, op by op. ``prepare`` builds the graph once and each call runs
:func:`rsgn.forward.forward` on the spec with that table, traces it and charges the trace
with the electronic cost model (:mod:`rsgn.backends.torch.cost`) at the option ``precision``
(fp32 by default; int8 prices the same counted work on an 8-bit integer datapath: the
electronic baseline an optical core reading <= 8 effective bits is compared with). The
computation itself is float32 either way. Latency is the measured wall time of the call
(CUDA-synchronised on a GPU) per inference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import torch

from rsgn import ops
from rsgn.backends.base import (
    Backend,
    Capabilities,
    Measured,
    NotAvailable,
    Program,
    Report,
)
from rsgn.backends.cost import CostLedger
from rsgn.backends.options import TargetOptions
from rsgn.backends.torch import cost, nvml
from rsgn.backends.torch.nvml import EnergyMeter
from rsgn.errors import RsgnError
from rsgn.forward import Trace, build_graph, forward
from rsgn.ops import OpTable
from rsgn.spec import ModelSpec


def resolve_device(name: str | None, default: torch.device) -> torch.device:
    """``None`` -> ``default``; ``'cuda'`` without a GPU is an RsgnError."""
    if name is None:
        return default
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RsgnError(f"device {name!r} asked for but no CUDA GPU is available")
    return torch.device(name)


CPU_NO_COUNTER = "no power counter is read on the CPU (NVML measures CUDA GPUs only)"


def wall_clock_how(device: torch.device) -> str:
    if device.type == "cuda":
        return f"wall clock, CUDA-synchronised ({torch.cuda.get_device_name(device)})"
    return "wall clock on the CPU"


COMPILE_MODES = ("numba", "eager")
"""How the torch target runs its op table (:attr:`TorchOptions.compile`)."""
REFERENCE_TOL = 1e-5
"""What ``compile = 'numba'`` promises against the definition (``'eager'``): max |logit -
eager logit| / max |eager logit|. Float32 sums in other orders (the message sum is pushed per
sample, norms and LayerNorm statistics accumulate differently): measured ~1e-7 on the contract
models; the winners are the same unless two scores tie at the cap to float32 rounding."""


@dataclass
class TorchOptions(TargetOptions):
    """Options of the torch target."""

    preset: str = "electronic_45nm"
    device: str | None = None
    """cpu, cuda, cuda:N; None: where the spec's tensors are."""
    compile: str = "numba"
    """'numba': the propagation step (forward and backward), the nearest-spark search and the
    ignition select run as numba kernels on CPU tensors (:mod:`.compiled`; CUDA tensors take
    the definition); 'eager': :mod:`rsgn.ops` op by op, the definition bit for bit. The
    default is the faster one measured on the CPU (``studies/cpu_compiled``)."""
    precision: str = "fp32"
    """Datapath width the cost model prices (fp32, int8); the numerics stay float32."""
    PRESETS: ClassVar[tuple[str, ...]] = ("electronic_45nm",)
    TARGET: ClassVar[str] = "torch"

    def validate(self) -> None:
        super().validate()
        if self.compile not in COMPILE_MODES:
            raise RsgnError(
                f"torch option 'compile': {self.compile!r} is not one of {', '.join(COMPILE_MODES)}"
            )
        cost.precision(self.precision)


def op_table(compile: str) -> OpTable:
    """The torch target's op table for a ``compile`` mode (see :class:`TorchOptions`)."""
    if compile == "eager":
        return ops.TABLE
    from rsgn.backends.torch.compiled import compiled_table

    return compiled_table()


def run_traced(
    spec: ModelSpec,
    graph,
    x: torch.Tensor,
    table: OpTable,
    lengths: torch.Tensor | None = None,
    *,
    measure_energy: bool = False,
) -> tuple[torch.Tensor, list[float], Trace, float, Measured | NotAvailable]:
    """Forward pass with a trace, timed (CUDA-synchronised), with the GPU's NVML energy when
    ``measure_energy`` on CUDA: (logits, fractions, trace, seconds, measured energy);
    ``lengths`` [B] marks padded steps (None: none)."""
    trace = Trace()
    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(x.device)
    meter = EnergyMeter(x.device.index or 0) if (cuda and measure_energy) else None
    t0 = time.perf_counter()
    if meter is not None:
        meter.__enter__()
    out = forward(spec.weights, spec.hyper, x, table, graph=graph, trace=trace, lengths=lengths)
    if cuda:
        torch.cuda.synchronize(x.device)
    dt = time.perf_counter() - t0
    if meter is not None:
        meter.__exit__(None, None, None)
    energy = meter.result() if meter is not None else NotAvailable(measured_energy_reason(x.device))
    return out.logits, out.active_fraction_per_step, trace, dt, energy


class TorchProgram(Program):
    """The spec on the torch target: the graph built once, costs counted per call."""

    target = "torch"

    def __init__(
        self,
        spec: ModelSpec,
        device: torch.device,
        preset: str,
        prec: cost.Precision = cost.FP32,
        measure_energy: bool = False,
        ops_table: OpTable = ops.TABLE,
    ) -> None:
        self.spec = spec.to(device)
        self.device = device
        self.preset = preset
        self.precision = prec
        self.measure_energy = measure_energy
        self.table = cost.electronic_table()
        self.op_table = ops_table
        with torch.no_grad():
            self.graph = build_graph(self.spec.weights, self.spec.hyper, ops_table)

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Report]:
        x = x.to(self.device)
        lengths = None if lengths is None else lengths.to(self.device)
        logits, fractions, trace, dt, measured = run_traced(
            self.spec, self.graph, x, self.op_table, lengths, measure_energy=self.measure_energy
        )
        ledger = CostLedger(self.table)
        cost.charge_run(ledger, self.spec, self.graph, trace, prec=self.precision)
        how = wall_clock_how(self.device)
        n = int(x.shape[0])
        return logits, Report(
            target=self.target,
            preset=self.preset,
            n_samples=n,
            active_fraction_per_step=[float(f) for f in fractions],
            wall_time=Measured(dt, "s", how),
            latency=Measured(dt / max(1, n), "s", f"{how}, batch time / batch size"),
            ledger=ledger,
            energy_model=cost.model_text(self.precision),
            energy_measured=measured,
        )


def measured_energy_reason(device: torch.device) -> str:
    """Why a run on ``device`` has no measured energy."""
    if device.type == "cuda":
        return "NVML is not installed (pip install nvidia-ml-py)"
    return CPU_NO_COUNTER


def measured_energy_capability(device: str | None) -> str | NotAvailable:
    """What a torch-run target with the device option ``device`` says about measured energy:
    measured on an explicit CUDA device with NVML, else why not."""
    dev = torch.device(device or "cpu")
    if dev.type == "cuda" and torch.cuda.is_available() and nvml.available():
        return "measured"
    return NotAvailable(measured_energy_reason(dev))


class TorchBackend(Backend):
    """The reference target: :mod:`rsgn.ops` on the CPU or CUDA."""

    name = "torch"
    summary = "PyTorch reference (CPU/CUDA), differentiable; the definition of every op"
    Options = TorchOptions

    def capabilities(self) -> Capabilities:
        return Capabilities(
            trains=True,
            devices=("cpu", "cuda") if torch.cuda.is_available() else ("cpu",),
            metrics={
                "latency": "measured",
                "latency_distribution": NotAvailable(
                    "one wall-clock time per batch, not per inference"
                ),
                "energy": "modelled",
                "energy_measured": measured_energy_capability(self.options.device),
            },
            reference_tol=0.0 if self.options.compile == "eager" else REFERENCE_TOL,
            notes=(
                "the reference definition; every other target is tested against it"
                if self.options.compile == "eager"
                else "the reference definition with the propagation step, nearest-spark search "
                "and ignition select as numba CPU kernels (compile=eager: op by op)"
            )
            + f"; energy priced on a {self.options.precision} datapath",
        )

    @property
    def ops(self) -> OpTable:
        return op_table(self.options.compile)

    def prepare(self, spec: ModelSpec) -> TorchProgram:
        device = resolve_device(self.options.device, spec.device)
        measure = self.capabilities().kind("energy_measured") == "measured"
        return TorchProgram(
            spec,
            device,
            self.options.preset,
            cost.precision(self.options.precision),
            measure_energy=measure,
            ops_table=self.ops,
        )
