"""The Python API: train, load, evaluate and compare in a few lines, with typed results.

>>> import rsgn, torch
>>> cfg = rsgn.run_config("paper-training",   # one epoch, no step floor or selection split
...                      **{"model.n_nodes": 32, "model.d_hidden": 8, "model.k_in": 4,
...                      "train.epochs": 1, "data.n_samples": 60, "data.seq_len": 8})
>>> data = rsgn.task("hierarchical", cfg)
>>> run = rsgn.train(cfg, data, out=tmp / "run", log=None)   # doctest: +ELLIPSIS
>>> round(run.metrics["params"] / 1000) > 0
True
>>> ev = rsgn.evaluate(run.model, data.x_val, data.y_val, target="torch")
>>> ev.report.energy_per_inference.unit
'J'
>>> report = rsgn.compare(run.model, data.x_val[:8], data.y_val[:8],
...                       targets=["torch", "optical:ideal"])
>>> [row["row"] for row in report.rows]
['torch:electronic_45nm', 'optical:ideal']
>>> report.rows[1]["agreement"]
1.0

``rsgn.load(path)`` reopens a run folder or checkpoint; ``rsgn.targets()`` lists the targets,
their presets and availability. Every figure in a report is typed (:class:`Measured`,
:class:`Modelled`, :class:`NotAvailable`); see :mod:`rsgn.backends.base`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from rsgn.config import RunConfig


@dataclass
class Run:
    """A trained model with its config and (for a finished training) its metrics."""

    model: torch.nn.Module
    config: RunConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


@dataclass
class Comparison:
    """The result of :func:`compare`: one row per target:preset (and baseline), the notes,
    and everything else of the report (``raw``). ``write(folder)`` writes the report files."""

    rows: list[dict[str, Any]]
    notes: list[str]
    raw: dict[str, Any]

    def table(self) -> str:
        """The rows as a Markdown table."""
        from rsgn.comparison import table_text

        return table_text(self.raw)

    def write(self, folder: str | Path) -> dict[str, str]:
        """Write compare.json/.csv/.md, batches.json and the plots into a new folder."""
        from rsgn.comparison import new_report_dir, write_report

        return write_report(self.raw, new_report_dir(folder))


def run_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """A validated run config: the defaults (or a TOML file, or a shipped config: ``"paper"``,
    ``"paper-training"``, the default model trained for the given epochs only) with
    ``overrides`` given as ``{"section.key": value}`` keywords (``**{"model.n_nodes": 64}``)."""
    from rsgn.config import apply_overrides, load_config

    return apply_overrides(load_config(path), [f"{k}={v}" for k, v in overrides.items()])


def task(name: str, cfg: RunConfig | None = None, *, seed: int | None = None):
    """A built-in task (``hierarchical``, ``long-range``) as a Dataset, sized by ``cfg.data``."""
    from rsgn.data import make_task

    cfg = cfg or RunConfig()
    return make_task(name, cfg.data, seed=cfg.train.seed if seed is None else seed)


def train(
    cfg: RunConfig,
    data: Any,
    *,
    out: str | Path,
    model: str | None = None,
    target: str | None = None,
    log: TextIO | None = sys.stderr,
) -> Run:
    """Train ``model`` (``rsgn`` or a baseline name) on ``data`` into the folder ``out``
    (checkpoint + metrics.json, as ``rsgn train``); returns the trained :class:`Run`."""
    from rsgn.training import train as _train

    metrics = _train(cfg, data, out, backend=target, log=log, model=model)
    run = load(out)
    run.metrics = metrics
    return run


def load(path: str | Path) -> Run:
    """The model and config of a run folder or checkpoint file (and its metrics.json if
    present)."""
    from rsgn.checkpoint import load_model, resolve

    model, cfg, _ = load_model(path)
    ckpt = resolve(path)
    metrics_file = ckpt.parent / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Run(model=model, config=cfg, metrics=metrics, path=ckpt.parent)


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    target: str = "torch",
    preset: str | None = None,
    batch_size: int = 256,
    repeats: int = 1,
    **options: Any,
):
    """Accuracy, loss and the whole-run typed report of ``model`` on ``target`` (with its
    ``preset`` and typed ``options``): an :class:`rsgn.evaluation.Evaluation`. ``repeats > 1``:
    that many noise draws of a noisy target (accuracy as mean, std and 95% CI)."""
    from rsgn.backends import get_backend
    from rsgn.evaluation import evaluate as _evaluate

    if getattr(model, "model_name", None):  # a baseline runs on plain torch
        return _evaluate(model, x, y, target, preset=preset, batch_size=batch_size, repeats=repeats)
    be = get_backend(target, preset=preset, **options)
    return _evaluate(model, x, y, be, batch_size=batch_size, repeats=repeats)


def compare(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    targets: Sequence[str] = ("torch", "optical", "neuromorphic"),
    options: dict[str, list[str]] | None = None,
    baselines: Sequence[torch.nn.Module] = (),
    batch_size: int = 64,
    seed: int = 0,
) -> Comparison:
    """Run ``model`` on every ``target[:preset]`` on the same samples (and each baseline on
    plain torch), agreement measured against the torch reference: a :class:`Comparison`.
    ``options``: ``KEY=VALUE`` strings per target name."""
    from rsgn.comparison import compare as _compare
    from rsgn.comparison import parse_rows

    rows, _ = parse_rows(",".join(targets))
    raw = _compare(
        model,
        x,
        y,
        rows,
        target_args=options,
        batch_size=batch_size,
        seed=seed,
        baselines=list(baselines),
    )
    return Comparison(rows=raw["rows"], notes=raw["notes"], raw=raw)


def targets() -> list[dict[str, Any]]:
    """Every registered target: name, available here (and why not), summary, presets."""
    from rsgn.backends import availability

    return [
        {"name": n, "available": ok, "reason": why, "summary": s, "presets": p}
        for n, ok, why, s, p in availability()
    ]
