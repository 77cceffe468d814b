r"""Accuracy of the optical core against the torch reference over noise seeds (a measurement for
studies; the target itself never runs the reference)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rsgn.backends.registry import get_backend
from rsgn.errors import RsgnError
from rsgn.evaluation import evaluate
from rsgn.spec import ModelSpec


def accuracy_vs_torch(
    model: torch.nn.Module | ModelSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    preset: str = "bench",
    seeds: int | list[int] = 5,
    *,
    batch_size: int = 256,
    **options: Any,
) -> dict[str, Any]:
    r"""Accuracy drop of the optical core against the torch reference over noise seeds.

    For each seed s: acc_s on the optical target (``preset``, further typed ``options``),
    agreement_s = fraction of predictions equal to torch's. drop_s = acc_torch - acc_s; the
    report gives mean(drop) and its 95% confidence interval mean +- t_{0.975, n-1} sd / sqrt(n)
    (Student t over seeds; zero width for one seed or identical drops).
    """
    from scipy import stats

    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise RsgnError("accuracy_vs_torch needs at least one seed")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise RsgnError(
            f"x and y must hold the same, non-zero number of samples: {x.shape[0]}, {y.shape[0]}"
        )
    spec = model if isinstance(model, ModelSpec) else model.export()
    y = y.cpu()

    def predictions(name: str, **kw: Any) -> torch.Tensor:
        ev = evaluate(spec, x, y, get_backend(name, **kw), batch_size=batch_size, keep_logits=True)
        return ev.logits.argmax(1)

    ref = predictions("torch")
    acc_ref = float((ref == y).float().mean())
    accs, agrees = [], []
    for s in seed_list:
        pred = predictions("optical", preset=preset, seed=s, **options)
        accs.append(float((pred == y).float().mean()))
        agrees.append(float((pred == ref).float().mean()))
    drops = np.array([acc_ref - a for a in accs])
    mean = float(drops.mean())
    half = 0.0
    if len(drops) > 1 and drops.std(ddof=1) > 0:
        half = float(stats.t.ppf(0.975, len(drops) - 1) * drops.std(ddof=1) / math.sqrt(len(drops)))
    return {
        "preset": preset,
        "seeds": seed_list,
        "n_samples": int(x.shape[0]),
        "torch_accuracy": acc_ref,
        "optical_accuracy": accs,
        "agreement_with_torch": agrees,
        "accuracy_drop_mean": mean,
        "accuracy_drop_ci95": (mean - half, mean + half),
    }
