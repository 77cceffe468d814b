"""Evaluation of a model on a backend: accuracy, active fraction, latency and cost report.

Baselines (:mod:`rsgn.baselines`) run on torch only: their report has accuracy, loss, measured
active fraction and latency, and says so in place of the backend cost report.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from rsgn.backends import CostLedger, get_backend
from rsgn.backends.base import Backend
from rsgn.errors import RsgnError


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    backend: Backend | str | None = None,
    *,
    batch_size: int = 256,
    preset: str | None = None,
    return_details: bool = False,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    """Run ``x`` through ``backend.prepare(model)`` in batches.

    Returns accuracy, mean active fraction over propagation steps (and per step), the summed
    cost ledger (counted events, modelled energy with provenance), measured latency per batch
    and per sample, and the backend's capabilities.

    With ``return_details`` it returns ``(report, details)``: ``details`` holds the logits of
    every sample (``logits`` [n, C], float32, CPU), each batch's size and ``Report.latency_s``
    (``batch_sizes``, ``batch_latency_s``), each batch's backend metrics (``batch_metrics``)
    and the backend's :class:`Capabilities` (``capabilities``); ``rsgn compare`` uses them.
    """
    if getattr(model, "model_name", None):
        if return_details:
            raise RsgnError("return_details applies to the RSGN only (baselines run on torch)")
        return evaluate_baseline(model, x, y, backend, batch_size=batch_size, preset=preset)
    if backend is None or isinstance(backend, str):
        be = get_backend(backend, preset=preset)
    else:
        be = backend
    program = be.prepare(model)
    ledger: CostLedger | None = None
    correct, total = 0, 0
    per_step: list[float] = []
    latencies: list[float] = []
    backend_metrics: list[dict[str, Any]] = []
    all_logits: list[torch.Tensor] = []
    batch_sizes: list[int] = []
    batch_latency: list[float | str] = []
    loss_sum = 0.0
    for s in range(0, len(y), batch_size):
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        logits, rep = program(xb)
        if rep.metrics:
            backend_metrics.append(rep.metrics)
        logits = logits.float().cpu()
        if return_details:
            all_logits.append(logits.detach())
            batch_sizes.append(len(yb))
            batch_latency.append(rep.latency_s)
        loss_sum += float(torch.nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
        total += len(yb)
        w = len(yb)
        steps = rep.active_fraction_per_step
        if per_step:
            per_step = [a + b * w for a, b in zip(per_step, steps, strict=True)]
        else:
            per_step = [b * w for b in steps]
        if isinstance(rep.latency_s, float):
            latencies.append(rep.latency_s)
        if ledger is None:
            ledger = rep.ledger
        else:
            ledger.merge(rep.ledger)
    per_step = [v / total for v in per_step]
    caps = be.capabilities()
    out: dict[str, Any] = {
        "backend": be.name,
        "preset": getattr(be, "preset_name", None) or getattr(be, "energy_table_name", None),
        "n_samples": total,
        "accuracy": correct / total,
        "loss": loss_sum / total,
        "active_fraction": sum(per_step[1:]) / max(1, len(per_step) - 1),
        "active_fraction_per_step": per_step,
        "latency_s_per_batch": (sum(latencies) / len(latencies)) if latencies else "n/a",
        "latency_s_per_sample": (sum(latencies) / total) if latencies else "n/a",
        "capabilities": {"differentiable": caps.differentiable, "metrics": caps.metrics},
    }
    if backend_metrics:  # backend-specific extras (agreement with torch, latency breakdown...)
        out["backend_metrics"] = (
            backend_metrics[0] if len(backend_metrics) == 1 else backend_metrics
        )
    if ledger is not None:
        cost = ledger.to_dict()
        e = cost.get("energy_j")
        if isinstance(e, float):
            cost["energy_j_per_inference"] = e / total
        out["cost"] = cost
    if not math.isfinite(out["loss"]):
        out["loss"] = "n/a: non-finite"
    if return_details:
        details = {
            "logits": torch.cat(all_logits) if all_logits else torch.empty(0),
            "batch_sizes": batch_sizes,
            "batch_latency_s": batch_latency,
            "batch_metrics": backend_metrics,
            "capabilities": caps,
        }
        return out, details
    return out


BASELINE_COST = "n/a: baselines run on torch only"


def check_baseline_backend(backend: Backend | str | None, preset: str | None = None) -> None:
    """Baselines run on plain torch: refuse any other backend, or a hardware preset."""
    name = backend if (backend is None or isinstance(backend, str)) else backend.name
    if name not in (None, "torch"):
        raise RsgnError(f"baselines run on torch only, not on backend {name!r}")
    if preset is not None:
        raise RsgnError(f"baselines run on torch only: --preset {preset!r} does not apply")


def evaluate_baseline(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    backend: Backend | str | None = None,
    *,
    batch_size: int = 256,
    preset: str | None = None,
) -> dict[str, Any]:
    """Evaluate a baseline with plain torch (inference mode) in batches.

    Returns accuracy, loss, the active fraction (1.0 for dense models; for the MoE the measured
    fraction of expert capacity used, see ``active_fraction_definition``), measured latency and
    ``cost`` = "n/a: baselines run on torch only" (no backend cost model applies).
    """
    check_baseline_backend(backend, preset)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct, total, loss_sum, frac_sum = 0, 0, 0.0, 0.0
    latencies: list[float] = []
    loads: list[list[float]] = []
    with torch.inference_mode():
        for s in range(0, len(y), batch_size):
            xb, yb = x[s : s + batch_size].to(device), y[s : s + batch_size]
            t0 = time.perf_counter()
            logits = model(xb)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            latencies.append(time.perf_counter() - t0)
            logits = logits.float().cpu()
            loss_sum += float(torch.nn.functional.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
            total += len(yb)
            frac_sum += model.active_fraction() * len(yb)
            if hasattr(model, "expert_load"):
                loads.append([v * len(yb) for v in model.expert_load()])
    model.train(was_training)
    out: dict[str, Any] = {
        "backend": "torch",
        "model": model.model_name,
        "preset": None,
        "n_samples": total,
        "accuracy": correct / total,
        "loss": loss_sum / total,
        "params": model.n_params(),
        "active_fraction": frac_sum / total,
        "active_fraction_definition": model.active_fraction_definition,
        "active_fraction_per_step": "n/a: a baseline has no propagation steps",
        "latency_s_per_batch": sum(latencies) / len(latencies),
        "latency_s_per_sample": sum(latencies) / total,
        "capabilities": {
            "differentiable": True,
            "metrics": {
                "accuracy": "measured",
                "active_fraction": "measured",
                "latency": "measured (wall clock; CUDA-synchronised on GPU)",
                "energy_modelled": BASELINE_COST,
            },
        },
        "cost": BASELINE_COST,
    }
    if loads:
        out["expert_load"] = [sum(col) / total for col in zip(*loads, strict=True)]
    if not math.isfinite(out["loss"]):
        out["loss"] = "n/a: non-finite"
    return out
