"""The torch target: the reference definition (:mod:`rsgn.ops`) on the CPU or a CUDA GPU.

``ops`` is :data:`rsgn.ops.TABLE` itself; ``prepare`` builds the graph once and each call runs
:func:`rsgn.forward.forward` on the spec, traces it and charges the trace with the electronic
cost model (:mod:`rsgn.backends.torch.cost`) at the option ``precision`` (fp32 by default;
int8 prices the same counted work on an 8-bit integer datapath: the electronic baseline an
optical core reading <= 8 effective bits is compared with). The computation itself is float32
either way. Latency is the measured wall time of the call (CUDA-synchronised on a GPU) per
inference.
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
from rsgn.backends.torch import cost
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


def wall_clock_how(device: torch.device) -> str:
    if device.type == "cuda":
        return f"wall clock, CUDA-synchronised ({torch.cuda.get_device_name(device)})"
    return "wall clock on the CPU"


@dataclass
class TorchOptions(TargetOptions):
    """Options of the torch target."""

    preset: str = "electronic_45nm"
    device: str | None = None
    """cpu, cuda, cuda:N; None: where the spec's tensors are."""
    precision: str = "fp32"
    """Datapath width the cost model prices (fp32, int8); the numerics stay float32."""
    PRESETS: ClassVar[tuple[str, ...]] = ("electronic_45nm",)
    TARGET: ClassVar[str] = "torch"

    def validate(self) -> None:
        super().validate()
        cost.precision(self.precision)


def run_traced(
    spec: ModelSpec, graph, x: torch.Tensor, table: OpTable
) -> tuple[torch.Tensor, list[float], Trace, float]:
    """Forward pass with a trace, timed (CUDA-synchronised): (logits, fractions, trace, s)."""
    trace = Trace()
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    t0 = time.perf_counter()
    out = forward(spec.weights, spec.hyper, x, table, graph=graph, trace=trace)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return out.logits, out.active_fraction_per_step, trace, time.perf_counter() - t0


class TorchProgram(Program):
    """The spec on the torch target: the graph built once, costs counted per call."""

    target = "torch"

    def __init__(
        self, spec: ModelSpec, device: torch.device, preset: str, prec: cost.Precision = cost.FP32
    ) -> None:
        self.spec = spec.to(device)
        self.device = device
        self.preset = preset
        self.precision = prec
        self.table = cost.electronic_table()
        with torch.no_grad():
            self.graph = build_graph(self.spec.weights, self.spec.hyper, ops.TABLE)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, Report]:
        x = x.to(self.device)
        logits, fractions, trace, dt = run_traced(self.spec, self.graph, x, ops.TABLE)
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
        )


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
                "energy_measured": NotAvailable("the torch target reads no power counter"),
            },
            reference_tol=0.0,
            notes="the reference definition; every other target is tested against it; "
            f"energy priced on a {self.options.precision} datapath",
        )

    @property
    def ops(self) -> OpTable:
        return ops.TABLE

    def prepare(self, spec: ModelSpec) -> TorchProgram:
        device = resolve_device(self.options.device, spec.device)
        return TorchProgram(
            spec, device, self.options.preset, cost.precision(self.options.precision)
        )
