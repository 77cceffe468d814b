"""The target interface (DESIGN §3): Backend, Capabilities, Program, Report and typed metrics.

A target is a :class:`Backend` subclass that provides

- ``ops``: a table of differentiable op implementations (:class:`rsgn.ops.OpTable`) when it
  can train (torch = :data:`rsgn.ops.TABLE`; triton = the same composition with kernels),
  else None; and
- ``prepare(spec) -> Program``: the trained model (a frozen :class:`~rsgn.spec.ModelSpec`)
  mapped onto the target once. ``program(x) -> (logits, Report)`` runs one batch; programs
  keep what ``prepare`` mapped and nothing else, so calls are independent and re-entrant.

No backend derives from another: a target that computes part of the model electronically
calls :mod:`rsgn.ops` for it, explicitly, and says so in its cost model.

Every figure a :class:`Report` carries is typed: :class:`Measured` (value, unit, how it was
measured), :class:`Modelled` (value, unit, the model and its sources) or
:class:`NotAvailable` (why). Modelled latency and measured wall time are separate fields.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from rsgn.backends.cost import CostLedger
from rsgn.backends.options import TargetOptions
from rsgn.errors import RsgnError
from rsgn.state import ActiveState, Candidates, Graph

if TYPE_CHECKING:  # pragma: no cover
    from rsgn.ops import OpTable
    from rsgn.spec import ModelSpec

OPS = (
    "input",
    "encode",
    "graph",
    "ignite",
    "attend",
    "propagate",
    "inhibit",
    "select",
    "update",
    "readout",
    "sync",
    "static",
)
"""The op vocabulary every target's ledger uses, in data-flow order (``sync``: barriers and
other per-step synchronisation; ``static``: static power over the run)."""

__all__ = [
    "OPS",
    "ActiveState",
    "Backend",
    "Candidates",
    "Capabilities",
    "Graph",
    "Measured",
    "Metric",
    "Modelled",
    "NotAvailable",
    "Program",
    "Report",
    "merge_reports",
    "metric_dict",
]


# ------------------------------------------------------------------------------ typed metrics
@dataclass(frozen=True)
class Measured:
    """A figure measured on this machine: ``how`` says with what (wall clock, NVML...)."""

    value: float
    unit: str
    how: str


@dataclass(frozen=True)
class Modelled:
    """A figure computed by a model: ``model`` says which, ``sources`` its constants' origins."""

    value: float
    unit: str
    model: str
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotAvailable:
    """A figure the target cannot give, with the reason."""

    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("NotAvailable needs a reason")


Metric = Measured | Modelled | NotAvailable

METRIC_KINDS = {Measured: "measured", Modelled: "modelled", NotAvailable: "n/a"}


def metric_dict(m: Metric) -> dict[str, Any]:
    """JSON form: ``{"kind": "measured" | "modelled" | "n/a", ...fields}``."""
    return {"kind": METRIC_KINDS[type(m)], **asdict(m)}


def metric_value(m: Metric) -> float | None:
    """The number of a Measured or Modelled metric, None for NotAvailable."""
    return None if isinstance(m, NotAvailable) else m.value


# ------------------------------------------------------------------------------ capabilities
@dataclass(frozen=True)
class Capabilities:
    """What a target can do and how it knows each metric of its reports.

    ``metrics`` maps each report metric (``latency``, ``energy``, ``energy_measured``,
    ``latency_distribution``) to ``"measured"``, ``"modelled"`` or a :class:`NotAvailable`;
    a Report of this target carries exactly that kind in the matching field (the contract
    suite checks it).
    """

    trains: bool
    """Has a differentiable op table (``Backend.ops``): it can train."""
    devices: tuple[str, ...]
    metrics: dict[str, str | NotAvailable]
    reference_tol: float | None = None
    """The largest |logit - torch logit| / max |torch logit| this target with these options
    promises (float precision where the computation is ideal); None: no promise (noise,
    quantisation), agreement is only measured."""
    notes: str = ""

    def kind(self, metric: str) -> str:
        v = self.metrics.get(metric)
        if v is None:
            return "n/a"
        return "n/a" if isinstance(v, NotAvailable) else v

    def to_dict(self) -> dict[str, Any]:
        return {
            "trains": self.trains,
            "devices": list(self.devices),
            "metrics": {
                k: (f"n/a: {v.reason}" if isinstance(v, NotAvailable) else v)
                for k, v in self.metrics.items()
            },
            "reference_tol": self.reference_tol,
            "notes": self.notes,
        }


# ------------------------------------------------------------------------------ reports
@dataclass
class Report:
    """One program call (or several, merged): what was computed and what it cost.

    ``latency`` is per inference (measured on a device, or modelled for a simulated target);
    ``latency_per_inference`` its distribution in seconds where the target gives one;
    ``wall_time`` the measured wall time of the call on this machine (the simulation's own
    speed for a simulated target). ``ledger`` holds counted events by op and their modelled
    energy; ``details`` target-specific figures (mapping, event counts, NeuroBench...).
    """

    target: str
    preset: str | None
    n_samples: int
    active_fraction_per_step: list[float]
    """Measured fraction of nodes active, mean over samples: [ignition, step 1, ...]."""
    wall_time: Measured
    latency: Measured | Modelled | NotAvailable
    latency_per_inference: list[float] | None = None
    ledger: CostLedger | None = None
    energy_model: str = ""
    """What the ledger's energies are (the cost model and its tables); without a ledger, why
    the report has no modelled energy."""
    energy_measured: Measured | NotAvailable = field(
        default_factory=lambda: NotAvailable("no power counter was read")
    )
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def active_fraction(self) -> float:
        """Mean active fraction over the propagation steps (ignition excluded)."""
        steps = self.active_fraction_per_step[1:]
        return sum(steps) / max(1, len(steps))

    @property
    def energy(self) -> Modelled | NotAvailable:
        """Modelled energy of the call (J): counted events x per-event energies."""
        if self.ledger is None or self.ledger.table is None:
            return NotAvailable(self.energy_model or f"{self.target} keeps no cost ledger")
        table = self.ledger.table.events
        srcs = tuple(sorted({table[ev].source for ev in self.ledger.totals()}))
        return Modelled(self.ledger.energy_j(), "J", self.energy_model, srcs)

    @property
    def energy_per_inference(self) -> Modelled | NotAvailable:
        e = self.energy
        if isinstance(e, NotAvailable):
            return e
        return Modelled(e.value / max(1, self.n_samples), "J", e.model, e.sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "preset": self.preset,
            "n_samples": self.n_samples,
            "active_fraction": self.active_fraction,
            "active_fraction_per_step": self.active_fraction_per_step,
            "wall_time": metric_dict(self.wall_time),
            "latency": metric_dict(self.latency),
            "latency_per_inference_s": self.latency_per_inference,
            "energy": metric_dict(self.energy),
            "energy_per_inference": metric_dict(self.energy_per_inference),
            "energy_measured": metric_dict(self.energy_measured),
            "cost": None if self.ledger is None else self.ledger.to_dict(),
            "details": self.details,
        }


def _merge_metric(ms: Sequence[Metric], weights: Sequence[int]) -> Metric:
    """Sample-weighted mean of per-inference metrics of one kind (the first n/a wins)."""
    for m in ms:
        if isinstance(m, NotAvailable):
            return m
    total = max(1, sum(weights))
    value = math.fsum(m.value * w for m, w in zip(ms, weights, strict=True)) / total
    first = ms[0]
    if isinstance(first, Measured):
        return Measured(value, first.unit, first.how)
    return Modelled(value, first.unit, first.model, first.sources)


def merge_reports(reports: Sequence[Report]) -> Report:
    """One whole-run report from the reports of consecutive batches: sums (samples, wall time,
    ledger counts, measured energy), sample-weighted means (active fractions, per-inference
    latency) and concatenated distributions. Per-batch ``details`` stay in
    ``details['per_batch']``."""
    if not reports:
        raise RsgnError("no batches to report on")
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    ns = [r.n_samples for r in reports]
    total = sum(ns)
    steps = [
        math.fsum(r.active_fraction_per_step[i] * n for r, n in zip(reports, ns, strict=True))
        / max(1, total)
        for i in range(len(first.active_fraction_per_step))
    ]
    ledger = None
    if first.ledger is not None:
        ledger = CostLedger(first.ledger.table)
        for r in reports:
            ledger.merge(r.ledger)
    wall = Measured(math.fsum(r.wall_time.value for r in reports), "s", first.wall_time.how)
    dist = None
    if all(r.latency_per_inference is not None for r in reports):
        dist = [t for r in reports for t in r.latency_per_inference]
    em: Measured | NotAvailable = first.energy_measured
    if all(isinstance(r.energy_measured, Measured) for r in reports):
        em = Measured(
            math.fsum(r.energy_measured.value for r in reports), "J", first.energy_measured.how
        )
    elif isinstance(em, Measured):
        em = NotAvailable("a batch had no measured energy")
    return Report(
        target=first.target,
        preset=first.preset,
        n_samples=total,
        active_fraction_per_step=steps,
        wall_time=wall,
        latency=_merge_metric([r.latency for r in reports], ns),
        latency_per_inference=dist,
        ledger=ledger,
        energy_model=first.energy_model,
        energy_measured=em,
        details={"per_batch": [r.details for r in reports]},
    )


# ------------------------------------------------------------------------------ programs
class Program(abc.ABC):
    """A model mapped onto a target. ``program(x) -> (logits, Report)``; re-entrant."""

    target: str
    spec: ModelSpec

    @abc.abstractmethod
    def __call__(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Report]:
        """Run a batch ``x`` [B, T, d_in] (``lengths`` [B]: steps t >= L_b are padding; None:
        none); return logits [B, C] and the batch's Report."""


# ------------------------------------------------------------------------------ backends
class Backend(abc.ABC):
    """A target: typed options (``Options``, with a ``preset``), capabilities, an optional
    training op table and ``prepare``."""

    name: ClassVar[str] = "abstract"
    summary: ClassVar[str] = ""
    Options: ClassVar[type[TargetOptions]] = TargetOptions

    def __init__(self, options: TargetOptions | None = None) -> None:
        opts = options if options is not None else self.Options()
        if not isinstance(opts, self.Options):
            raise RsgnError(
                f"backend {self.name!r} takes {self.Options.__name__}, got {type(opts).__name__}"
            )
        opts.validate()
        self.options = opts

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """(is this target usable here?, reason if not)."""
        return True, ""

    @classmethod
    def emulated(cls) -> str | None:
        """A reason when this target runs here only emulated, far slower than on its hardware
        (``compare`` then runs it only when listed explicitly), else None."""
        return None

    @classmethod
    def presets(cls) -> list[str]:
        """Names of the presets this target's ``Options.preset`` accepts."""
        return cls.Options.preset_names()

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this target supports and how it knows each metric."""

    @property
    def ops(self) -> OpTable | None:
        """The differentiable op table this target trains with, or None."""
        return None

    def check(self, spec: ModelSpec) -> None:
        """Raise an RsgnError naming the reason if this target cannot run ``spec`` (called
        before any work, e.g. by ``compare`` and ``sweep``); this default accepts every model."""
        del spec

    @abc.abstractmethod
    def prepare(self, spec: ModelSpec) -> Program:
        """Map a trained model onto this target once; returns a runnable Program."""
