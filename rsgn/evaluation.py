"""Evaluation of a model on a target: accuracy and loss plus the target's whole-run Report.

The RSGN runs through ``backend.prepare(model.export())`` in batches; the batches' reports are
merged into one (:func:`rsgn.backends.base.merge_reports`). Baselines (:mod:`rsgn.baselines`)
run on plain torch.

Noise statistics as aihwkit reports them: ``repeats = R > 1`` evaluates R independent draws of a
noisy target (its option ``seed`` = s0, s0 + 1, ..., s0 + R - 1: new static device errors and new
per-sample noise each time) and reports the accuracy as mean, standard deviation and a 95%
confidence interval of the mean (Student t over the R draws; :class:`NoiseStats`).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from rsgn.backends import get_backend
from rsgn.backends.base import Backend, Measured, NotAvailable, Report, merge_reports
from rsgn.errors import RsgnError
from rsgn.progress import progress
from rsgn.spec import ModelSpec


@dataclass(frozen=True)
class NoiseStats:
    """Accuracy and loss over R noise draws of one target (the seeds they used)."""

    seeds: list[int]
    accuracies: list[float]
    losses: list[float]

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies)

    @property
    def std(self) -> float:
        """Sample standard deviation of the accuracy over the draws (0 for one draw)."""
        n = len(self.accuracies)
        if n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((a - m) ** 2 for a in self.accuracies) / (n - 1))

    @property
    def ci95(self) -> tuple[float, float]:
        r"""95% confidence interval of the mean accuracy, :math:`\bar a \pm t_{0.975,R-1}
        s/\sqrt R` (zero width for one draw)."""
        from scipy import stats

        n = len(self.accuracies)
        half = 0.0 if n < 2 else float(stats.t.ppf(0.975, n - 1)) * self.std / math.sqrt(n)
        return (self.mean - half, self.mean + half)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repeats": len(self.seeds),
            "seeds": self.seeds,
            "accuracy_mean": self.mean,
            "accuracy_std": self.std,
            "accuracy_ci95": list(self.ci95),
            "accuracy_per_repeat": self.accuracies,
            "loss_per_repeat": self.losses,
            "ci_method": "Student t over the noise draws (seeds)",
        }


@dataclass
class Evaluation:
    """Accuracy and loss of one model on one target, and the target's whole-run report."""

    accuracy: float
    loss: float
    report: Report
    capabilities: dict[str, Any]
    logits: torch.Tensor | None = None
    """Logits of every sample [n, C] (float32, CPU) when asked for."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Model-specific figures (a baseline's parameter count, the MoE's expert load...)."""
    noise: NoiseStats | None = None
    """Accuracy over several noise draws (``repeats > 1``); ``accuracy`` is then their mean,
    ``report`` and ``logits`` those of the first draw."""

    @property
    def n_samples(self) -> int:
        return self.report.n_samples

    @property
    def active_fraction(self) -> float:
        return self.report.active_fraction

    def to_dict(self) -> dict[str, Any]:
        rep = self.report.to_dict()
        out = {
            "target": rep.pop("target"),
            "preset": rep.pop("preset"),
            "n_samples": rep.pop("n_samples"),
            "accuracy": self.accuracy,
            "loss": self.loss if math.isfinite(self.loss) else "n/a: non-finite",
            **self.extra,
            **rep,
            "capabilities": self.capabilities,
        }
        if self.noise is not None:
            out["noise_repeats"] = self.noise.to_dict()
        return out


def _score(logits: torch.Tensor, y: torch.Tensor) -> tuple[int, float]:
    logits = logits.float().cpu()
    loss = float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
    return int((logits.argmax(1) == y).sum()), loss


def evaluate(
    model: torch.nn.Module | ModelSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    backend: Backend | str | None = None,
    *,
    batch_size: int = 256,
    preset: str | None = None,
    keep_logits: bool = False,
    repeats: int = 1,
    lengths: torch.Tensor | None = None,
    show_progress: bool = False,
) -> Evaluation:
    """Run ``x`` through the target in batches of ``batch_size``; accuracy, mean loss and the
    merged report. ``model`` is an RSGN (exported here), its ModelSpec, or a baseline;
    ``lengths`` [n] marks padded steps (None: none); ``show_progress`` draws a progress bar on a
    terminal. ``repeats > 1``: that many noise draws (seeds s0 ... s0 + R - 1 of the target's
    ``seed`` option), accuracy as their mean with :class:`NoiseStats`."""
    if batch_size <= 0:
        raise RsgnError(f"batch size must be positive, got {batch_size}")
    if repeats < 1:
        raise RsgnError(f"repeats must be >= 1, got {repeats}")
    if len(y) == 0:
        raise RsgnError("no samples to evaluate")
    if getattr(model, "model_name", None):
        if repeats > 1:
            raise RsgnError("repeats > 1 needs a noisy target; baselines run on plain torch")
        check_baseline_backend(backend, preset)
        return _evaluate_baseline(model, x, y, batch_size, keep_logits, show_progress, lengths)
    be = backend if isinstance(backend, Backend) else get_backend(backend, preset=preset)
    spec = model if isinstance(model, ModelSpec) else model.export()
    if repeats > 1:
        return _repeated(spec, x, y, be, batch_size, keep_logits, repeats, lengths, show_progress)
    be.check(spec)
    program = be.prepare(spec)
    correct, loss = 0, 0.0
    reports: list[Report] = []
    kept: list[torch.Tensor] = []
    starts = range(0, len(y), batch_size)
    for s in progress(starts, total=len(starts), desc=f"eval {be.name}", show=show_progress):
        if lengths is None:
            logits, rep = program(x[s : s + batch_size])
        else:
            logits, rep = program(x[s : s + batch_size], lengths=lengths[s : s + batch_size])
        c, ls = _score(logits, y[s : s + batch_size])
        correct, loss = correct + c, loss + ls
        reports.append(rep)
        if keep_logits:
            kept.append(logits.detach().float().cpu())
    n = len(y)
    return Evaluation(
        accuracy=correct / n,
        loss=loss / n,
        report=merge_reports(reports),
        capabilities=be.capabilities().to_dict(),
        logits=torch.cat(kept) if keep_logits else None,
    )


def _repeated(
    spec: ModelSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    be: Backend,
    batch_size: int,
    keep_logits: bool,
    repeats: int,
    lengths: torch.Tensor | None = None,
    show_progress: bool = False,
) -> Evaluation:
    """``repeats`` evaluations of ``be`` with seeds s0, s0 + 1, ... (its ``seed`` option)."""
    seed0 = getattr(be.options, "seed", None)
    if seed0 is None:
        raise RsgnError(
            f"repeats > 1 needs a target with a noise seed; {be.name!r} has no 'seed' option"
        )
    seeds = [int(seed0) + r for r in range(repeats)]
    runs = [
        evaluate(
            spec,
            x,
            y,
            type(be)(be.options.replace(seed=s)),
            batch_size=batch_size,
            keep_logits=keep_logits and r == 0,
            lengths=lengths,
            show_progress=show_progress,
        )
        for r, s in enumerate(seeds)
    ]
    stats = NoiseStats(seeds, [ev.accuracy for ev in runs], [ev.loss for ev in runs])
    first = runs[0]
    return Evaluation(
        accuracy=stats.mean,
        loss=sum(stats.losses) / repeats,
        report=first.report,
        capabilities=first.capabilities,
        logits=first.logits,
        noise=stats,
    )


BASELINE_ENERGY_MODEL = (
    "counted operators (torch.utils.flop_counter MACs + element-wise counts) x electronic_45nm "
    "per-event energies (Horowitz 2014, 45 nm): the RSGN's electronic model"
)


def _sum_measured(parts: list, reason: str) -> Measured | NotAvailable:
    """The batches' measured energies summed, or the first reason one is missing."""
    if not parts:
        return NotAvailable(reason)
    for p in parts:
        if isinstance(p, NotAvailable):
            return p
    return Measured(math.fsum(p.value for p in parts), "J", parts[0].how)


def check_baseline_backend(backend: Backend | str | None, preset: str | None = None) -> None:
    """Baselines run on plain torch: refuse any other target, or a hardware preset."""
    name = backend if (backend is None or isinstance(backend, str)) else backend.name
    if name not in (None, "torch"):
        raise RsgnError(f"baselines run on torch only, not on backend {name!r}")
    if preset is not None:
        raise RsgnError(f"baselines run on torch only: --preset {preset!r} does not apply")


def _evaluate_baseline(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    keep_logits: bool,
    show_progress: bool,
    lengths: torch.Tensor | None = None,
) -> Evaluation:
    """Evaluate a baseline with plain torch (inference mode) in batches: accuracy, loss, the
    measured active fraction (1.0 for dense models; for the MoE the fraction of expert
    capacity used, see ``active_fraction_definition``), measured latency, and modelled energy
    on the RSGN's electronic cost model (:mod:`rsgn.backends.torch.baseline_cost`: each batch's
    operators counted in a second, counted forward pass)."""
    from rsgn.backends.cost import CostLedger
    from rsgn.backends.torch import cost as electronic
    from rsgn.backends.torch import nvml
    from rsgn.backends.torch.baseline_cost import charge_module, count_module
    from rsgn.backends.torch.nvml import EnergyMeter
    from rsgn.backends.torch.target import measured_energy_reason

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct, total, loss, frac_sum, wall = 0, 0, 0.0, 0.0, 0.0
    loads: list[list[float]] = []
    kept: list[torch.Tensor] = []
    ledger = CostLedger(electronic.electronic_table())
    meter_on = device.type == "cuda" and nvml.available()
    measured: list[Measured | NotAvailable] = []
    starts = range(0, len(y), batch_size)
    bar = progress(starts, total=len(starts), desc=f"eval {model.model_name}", show=show_progress)
    with torch.inference_mode():
        for s in bar:
            xb, yb = x[s : s + batch_size].to(device), y[s : s + batch_size]
            lb = None if lengths is None else lengths[s : s + batch_size].to(device)
            with EnergyMeter(device.index or 0) if meter_on else nullcontext() as meter:
                t0 = time.perf_counter()
                logits = model(xb, lb)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                wall += time.perf_counter() - t0
            if meter_on:
                measured.append(meter.result())
            _, counts = count_module(model, xb, lb)  # the same forward again, counted
            charge_module(ledger, counts)
            c, ls = _score(logits, yb)
            correct, loss, total = correct + c, loss + ls, total + len(yb)
            frac_sum += model.active_fraction() * len(yb)
            if hasattr(model, "expert_load"):
                loads.append([v * len(yb) for v in model.expert_load()])
            if keep_logits:
                kept.append(logits.detach().float().cpu())
    model.train(was_training)
    how = "wall clock" + (", CUDA-synchronised" if device.type == "cuda" else " on the CPU")
    frac = frac_sum / total
    report = Report(
        target="torch",
        preset=electronic.TABLE_NAME,
        n_samples=total,
        active_fraction_per_step=[frac, frac],
        wall_time=Measured(wall, "s", how),
        latency=Measured(wall / total, "s", how),
        ledger=ledger,
        energy_model=BASELINE_ENERGY_MODEL,
        energy_measured=_sum_measured(measured, measured_energy_reason(device)),
    )
    extra: dict[str, Any] = {
        "model": model.model_name,
        "params": model.n_params(),
        "active_fraction_definition": model.active_fraction_definition,
    }
    if loads:
        extra["expert_load"] = [sum(col) / total for col in zip(*loads, strict=True)]
    return Evaluation(
        accuracy=correct / total,
        loss=loss / total,
        report=report,
        capabilities={
            "trains": True,
            "devices": [device.type],
            "metrics": {
                "latency": "measured",
                "latency_distribution": "n/a: one wall-clock time per batch",
                "energy": "modelled",
                "energy_measured": "n/a: no power counter was read",
            },
        },
        logits=torch.cat(kept) if keep_logits else None,
        extra=extra,
    )
