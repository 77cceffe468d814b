"""Evaluation of a model on a backend: accuracy, active fraction, latency and cost report."""

from __future__ import annotations

import math
from typing import Any

import torch

from rsgn.backends import CostLedger, get_backend
from rsgn.backends.base import Backend


def evaluate(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    backend: Backend | str | None = None,
    *,
    batch_size: int = 256,
    preset: str | None = None,
) -> dict[str, Any]:
    """Run ``x`` through ``backend.prepare(model)`` in batches.

    Returns accuracy, mean active fraction over propagation steps (and per step), the summed
    cost ledger (counted events, modelled energy with provenance), measured latency per batch
    and per sample, and the backend's capabilities.
    """
    if backend is None or isinstance(backend, str):
        be = get_backend(backend, preset=preset)
    else:
        be = backend
    program = be.prepare(model)
    ledger: CostLedger | None = None
    correct, total = 0, 0
    per_step: list[float] = []
    latencies: list[float] = []
    loss_sum = 0.0
    for s in range(0, len(y), batch_size):
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        logits, rep = program(xb)
        logits = logits.float().cpu()
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
    if ledger is not None:
        cost = ledger.to_dict()
        e = cost.get("energy_j")
        if isinstance(e, float):
            cost["energy_j_per_inference"] = e / total
        out["cost"] = cost
    if not math.isfinite(out["loss"]):
        out["loss"] = "n/a: non-finite"
    return out
