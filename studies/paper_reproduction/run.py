"""Reproduce the RSGN paper's two tables and its ablation (spec §6), next to the paper's numbers.

One command trains every model on both tasks over several seeds, plus an ablation grid of the
RSGN on the hierarchical task, and writes ``results.json``, ``tables.md`` and PNG plots::

    python studies/paper_reproduction/run.py                 # full study -> full/
    python studies/paper_reproduction/run.py --quick         # smoke test -> quick/
    python studies/paper_reproduction/run.py --workers 2 --threads 1 --only hierarchical

Each run is one training (``rsgn.training.train``) in its own folder under ``--runs``
(default ``studies/paper_reproduction/ckpt_runs/``, gitignored). A run whose ``metrics.json``
exists is reused, an interrupted one resumes from its checkpoint, so the study resumes where it
stopped. Seed ``s`` seeds both the task data and the initialisation (as ``rsgn train --seed``).
Accuracy is the final validation accuracy on the 20% split.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

from rsgn.config import PAPER_LR, RSGN_LR

STUDY_DIR = Path(__file__).resolve().parent
DEFAULT_RUNS = STUDY_DIR / "ckpt_runs"

TASKS = ("hierarchical", "long-range")
MODELS = (
    "rsgn-hebbian",
    "rsgn-no-hebbian",
    "rsgn-paper",
    "conv",
    "transformer",
    "sparse-transformer",
    "lstm",
    "mlp",
    "moe",
)
TITLES = {
    "rsgn-hebbian": "RSGN + Hebbian",
    "rsgn-no-hebbian": "RSGN",
    "rsgn-paper": "RSGN, paper config + Hebbian",
    "conv": "Conv + max-pool (not in the paper)",
    "transformer": "Transformer",
    "sparse-transformer": "Sparse Transformer",
    "lstm": "LSTM",
    "mlp": "MLP",
    "moe": "MoE (not in the paper)",
}
TASK_TITLES = {
    "hierarchical": "Hierarchical classification (20 classes, length 64, chance 5%)",
    "long-range": "Long-range dependency (10 classes, length 128, chance 10%)",
}
FULL_SAMPLES = {"hierarchical": 5000, "long-range": 3000}
BATCH = 64  # rsgn's TrainConfig default, used for the full-study estimate
# The paper trains both tasks for 50 epochs. The long-range baselines are the study's costliest
# runs (Transformer 1.0 s, LSTM 0.5 s per step on one CPU thread), and every model that reaches
# 99% does so well before epoch 20, so the full study trains the long-range task for 20 epochs.
LONG_RANGE_EPOCHS = 20

# spec §6: accuracy %, std (None where the paper gives none), parameters
PAPER: dict[str, dict[str, tuple[float, float | None, int]]] = {
    "hierarchical": {
        "transformer": (30.1, 0.2, 403_348),
        "rsgn-hebbian": (23.8, 0.2, 41_672),
        "rsgn-no-hebbian": (23.8, 0.1, 41_672),
        "rsgn-paper": (23.8, 0.2, 41_672),
        "lstm": (18.1, 0.4, 566_292),
        "mlp": (16.0, 0.8, 281_364),
        "sparse-transformer": (15.9, 0.2, 403_348),
    },
    "long-range": {
        "transformer": (100.0, None, 600_330),
        "lstm": (100.0, None, 563_722),
        "rsgn-hebbian": (96.5, 0.5, 40_382),
        "rsgn-no-hebbian": (96.1, 0.2, 40_382),
        "rsgn-paper": (96.5, 0.5, 40_382),
    },
}


@dataclasses.dataclass(frozen=True)
class Point:
    """One ablation setting: ``group`` / ``setting`` as shown, RSGN config ``overrides``."""

    name: str
    group: str
    setting: str
    overrides: tuple[str, ...] = ()
    paper: float | None = None


def paper_overrides() -> tuple[str, ...]:
    """``--set`` strings that turn the package's default RSGN and training into the
    paper-faithful ones (``rsgn/presets/paper.toml``): the keys where the two differ, except
    the learning rate (set by :func:`main_spec`, so that ``--lr`` still wins)."""
    from rsgn.config import RunConfig, load_config

    paper, default = load_config("paper"), RunConfig()
    return tuple(
        f"{sec}.{f.name}={getattr(getattr(paper, sec), f.name)}"
        for sec in ("model", "train", "data")
        for f in dataclasses.fields(getattr(paper, sec))
        if f.name != "lr"
        and getattr(getattr(paper, sec), f.name) != getattr(getattr(default, sec), f.name)
    )


# The training of every run before issue 18 (the full/ record): the paper's schedule (epochs
# only, the last epoch is the result, no selection split, no augmentation).
BEFORE_TRAINING = (
    "train.min_steps=0",
    "train.eval_interval=0",
    "train.patience=0",
    "data.select_fraction=0",
    "train.augment_jitter=0",
    "train.augment_scale=0",
    "train.augment_shift=0",
)


# Every point differs from the default RSGN (256 nodes, 5 steps, Hebbian on, 5% active, width-5
# token encoder with 64 channels, 'attend' initial state, D 8, no token skip path, d 96, r 16)
# in one setting; "paper config" switches every improvement off at once. Paper values: spec §6.
# The arms that lost (init_state routed / both / max, spark_context 5, position_code) were
# removed from the model in rsgn 0.2; their rows, measured with rsgn 0.1, stay in the README.
ABLATION: tuple[Point, ...] = (
    Point("nodes-128", "nodes", "128", ("model.n_nodes=128",), 24.4),
    Point("default", "nodes", "256 (default)", (), 24.1),
    Point("nodes-512", "nodes", "512", ("model.n_nodes=512",), 23.6),
    Point("steps-1", "steps", "1", ("model.n_steps=1",), 24.1),
    Point("steps-3", "steps", "3", ("model.n_steps=3",), 24.1),
    Point("default", "steps", "5 (default)"),
    Point("default", "Hebbian", "on (default)"),
    Point("hebbian-off", "Hebbian", "off", ("model.hebbian=false",), 23.7),
    Point("default", "init_state", "attend (default)"),
    Point("init-mean", "init_state", "mean (paper)", ("model.init_state=mean",)),
    Point("default", "space dimension", "8 (default)"),
    Point("space-3", "space dimension", "3 (paper)", ("model.d_space=3",)),
    Point("default", "improvements", "encoder on, skip off (default)"),
    Point("skip-on", "improvements", "+ token_skip (max-pool path)", ("model.token_skip=true",)),
    Point("no-encoder", "improvements", "encoder off (raw tokens)", ("model.encoder_width=0",)),
    Point("node-readout", "improvements", "+ node_readout", ("model.node_readout=true",)),
    Point("paper-config", "improvements", "paper config (all off)", (), 23.8),
    Point("active-1", "active fraction", "1%", ("model.target_active=0.01",)),
    Point("active-2", "active fraction", "2%", ("model.target_active=0.02",)),
    Point("default", "active fraction", "5% (default)"),
    Point("active-10", "active fraction", "10%", ("model.target_active=0.1",)),
)
ABLATION_NAMES = tuple(dict.fromkeys(p.name for p in ABLATION))
# ablation points that are the same training as a main-table RSGN run share its folder
SAME_AS_MAIN = {
    "default": "rsgn-hebbian",
    "hebbian-off": "rsgn-no-hebbian",
    "paper-config": "rsgn-paper",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    mode: str
    epochs: int
    seeds: tuple[int, ...]
    ablation_seeds: tuple[int, ...]
    n_samples: tuple[tuple[str, int], ...]
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    ablation: tuple[str, ...]
    lr: float | None = None
    task_epochs: tuple[tuple[str, int], ...] = ()
    """Per-task epoch counts that replace ``epochs`` (the full study trains the long-range
    task for fewer epochs than the paper's 50 so that it fits a few hours on 2 cores)."""
    training: tuple[str, ...] = ()
    """``--set`` strings of the training every run gets (before its own overrides): empty
    for the package's default training (issue 18), :data:`BEFORE_TRAINING` for the full/
    record."""

    def samples(self, task: str) -> int:
        return dict(self.n_samples)[task]

    def epochs_for(self, task: str) -> int:
        return dict(self.task_epochs).get(task, self.epochs)


PRESETS = {
    "full": Settings(
        mode="full",
        epochs=50,
        seeds=(0, 1, 2),
        ablation_seeds=(0,),
        n_samples=tuple(FULL_SAMPLES.items()),
        models=MODELS,
        tasks=TASKS,
        ablation=ABLATION_NAMES,
        task_epochs=(("long-range", LONG_RANGE_EPOCHS),),
        training=BEFORE_TRAINING,
    ),
    "generalised": Settings(
        mode="generalised",
        epochs=50,
        seeds=(0, 1, 2),
        ablation_seeds=(0,),
        n_samples=tuple(FULL_SAMPLES.items()),
        models=MODELS,
        tasks=TASKS,
        ablation=ABLATION_NAMES,
        task_epochs=(("long-range", LONG_RANGE_EPOCHS),),
    ),
    "quick": Settings(
        mode="quick",
        epochs=2,
        seeds=(0,),
        ablation_seeds=(0,),
        n_samples=(("hierarchical", 600), ("long-range", 600)),
        models=MODELS,
        tasks=TASKS,
        # the default, the costliest points (512 nodes, 10% active) and one of every other
        # group; the full-study estimate times the rest like the default
        ablation=("default", "nodes-512", "steps-1", "hebbian-off", "init-mean", "space-3",
                  "active-10", "skip-on", "no-encoder", "paper-config"),
        training=("train.min_steps=0", "train.eval_interval=0"),
    ),
    "tiny": Settings(
        mode="tiny",
        epochs=1,
        seeds=(0,),
        ablation_seeds=(0,),
        n_samples=(("hierarchical", 60), ("long-range", 60)),
        models=("rsgn-hebbian", "mlp"),
        tasks=TASKS,
        ablation=("steps-1",),
        training=("train.min_steps=0", "train.eval_interval=0"),
    ),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training: ``label`` names its folder, ``model`` is ``rsgn`` or a baseline."""

    task: str
    label: str
    model: str
    overrides: tuple[str, ...]
    model_kwargs: tuple[tuple[str, Any], ...]
    seed: int
    epochs: int
    n_samples: int
    lr: float | None

    @property
    def id(self) -> str:
        return f"{self.task}/{self.label}/seed{self.seed}"

    def folder(self, runs: Path, mode: str) -> Path:
        tag = mode if self.lr is None else f"{mode}-lr{self.lr:g}"
        return runs / tag / self.task / self.label / f"seed{self.seed}"


def main_spec(task: str, key: str, seed: int, st: Settings) -> RunSpec:
    from rsgn.baselines import paper_kwargs

    overrides: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    if key.startswith("rsgn"):
        model = "rsgn"
        overrides = (
            ("model.hebbian=false",) if key == "rsgn-no-hebbian" else ("model.hebbian=true",)
        )
        if key == "rsgn-paper":  # the paper's model and learning rate (--lr still wins)
            overrides = paper_overrides() + overrides + (f"train.lr={PAPER_LR!r}",)
        if task == "long-range":
            overrides += ("model.n_steps=7",)
    else:
        model = key
        kwargs = tuple(sorted(paper_kwargs(key, task).items()))
    return RunSpec(
        task,
        key,
        model,
        st.training + overrides,
        kwargs,
        seed,
        st.epochs_for(task),
        st.samples(task),
        st.lr,
    )


def ablation_spec(name: str, seed: int, st: Settings) -> RunSpec:
    task = "hierarchical"
    if name in SAME_AS_MAIN:
        return main_spec(task, SAME_AS_MAIN[name], seed, st)
    point = next(p for p in ABLATION if p.name == name)
    overrides = (*st.training, "model.hebbian=true", *point.overrides)
    return RunSpec(
        task, name, "rsgn", overrides, (), seed, st.epochs_for(task), st.samples(task), st.lr
    )


def plan(st: Settings) -> dict[RunSpec, set[str]]:
    """Every run of the study (deduplicated) with the names ``--only`` can select it by."""
    runs: dict[RunSpec, set[str]] = {}
    for task in st.tasks:
        for key in st.models:
            for seed in st.seeds:
                runs.setdefault(main_spec(task, key, seed, st), set()).update({"main", key})
    if "hierarchical" in st.tasks:
        for name in st.ablation:
            for seed in st.ablation_seeds:
                runs.setdefault(ablation_spec(name, seed, st), set()).update({"ablation", name})
    return runs


def selected(spec: RunSpec, names: set[str], only: list[str] | None) -> bool:
    if not only:
        return True
    tokens = names | set(spec.id.split("/"))
    return any(o in tokens or fnmatch.fnmatch(spec.id, o) for o in only)


def run_config(spec: RunSpec):
    from rsgn.config import RunConfig, apply_overrides

    ov = [
        f"train.seed={spec.seed}",
        f"train.epochs={spec.epochs}",
        f"data.n_samples={spec.n_samples}",
        *spec.overrides,
    ]
    if spec.lr is not None:
        ov.append(f"train.lr={spec.lr!r}")
    return apply_overrides(RunConfig().validate(), ov)


def execute(spec: RunSpec, run_dir: str, threads: int | None) -> dict[str, Any]:
    """Train ``spec`` in ``run_dir`` (resuming a checkpoint there); return a short summary."""
    import torch

    from rsgn.checkpoint import atomic_write_json
    from rsgn.data import make_task
    from rsgn.malloc_tuning import tune_malloc
    from rsgn.training import train

    tune_malloc()  # as the rsgn command line does (speed only; see rsgn/malloc_tuning.py)
    if threads:
        torch.set_num_threads(threads)
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = run_config(spec)
    ds = make_task(spec.task, cfg.data, seed=spec.seed)
    with open(out / "train.log", "a") as log:
        metrics = train(
            cfg,
            ds,
            out,
            model=None if spec.model == "rsgn" else spec.model,
            model_kwargs=dict(spec.model_kwargs) or None,
            resume=True,
            log=log,
        )
    wall = time.perf_counter() - t0
    atomic_write_json(
        out / "study_run.json",
        {"id": spec.id, "wall_seconds": wall, "threads": torch.get_num_threads()},
    )
    return {"id": spec.id, "accuracy": metrics["accuracy"], "wall_seconds": wall}


GENERALISE_KEYS = (
    ("min_steps", "eval_interval", "patience", "augment_jitter", "augment_scale", "augment_shift",
     "weight_decay"),
    ("select_fraction",),
)  # fmt: skip
"""The training keys of issue 18 a reused run must share with the study."""


def load_run(spec: RunSpec, run_dir: Path) -> dict[str, Any] | None:
    """The finished run's metrics (checked against ``spec``), or None if it has not finished."""
    mpath = run_dir / "metrics.json"
    if not mpath.exists():
        return None
    m = json.loads(mpath.read_text())
    cfg = run_config(spec).to_dict()
    got = m["config"]
    checked = (("train", "epochs"), ("train", "seed"), ("train", "lr"), ("data", "n_samples"))
    checked += tuple(("train", k) for k in GENERALISE_KEYS[0]) + tuple(
        ("data", k) for k in GENERALISE_KEYS[1]
    )
    for sec, key in checked:
        if got[sec].get(key) != cfg[sec][key]:
            raise SystemExit(
                f"{mpath}: {sec}.{key} is {got[sec][key]!r}, this study wants {cfg[sec][key]!r};"
                " move the old run away or pass another --runs"
            )
    if spec.model == "rsgn" and got["model"] != cfg["model"]:
        raise SystemExit(f"{mpath}: the model config differs from this study's; use another --runs")
    side = run_dir / "study_run.json"
    wall = json.loads(side.read_text())["wall_seconds"] if side.exists() else None
    keep = ("accuracy", "val_loss", "params", "active_fraction", "seconds_per_step")
    epochs_run = m.get("epochs_run", m["epochs"])
    rec = {k: m[k] for k in keep}
    rec.update(
        id=spec.id,
        task=spec.task,
        label=spec.label,
        seed=spec.seed,
        folder=str(run_dir),
        epoch_seconds=m["train_seconds"] / epochs_run,
        train_seconds=m["train_seconds"],
        wall_seconds=wall,
        epochs=epochs_run,
        train_steps=m.get("train_steps"),
        selected_epoch=m.get("selection", {}).get("epoch", epochs_run),
        n_train=m["n_train"],
        n_val=m["n_val"],
        lr=m.get("lr", got["train"]["lr"]),
        history=[
            {k: h[k] for k in ("epoch", "train_loss", "train_accuracy", "val_accuracy")}
            for h in m["history"]
            if "val_accuracy" in h
        ],
    )
    return rec


def _mean_std(xs: list[float]) -> tuple[float, float]:
    mu = sum(xs) / len(xs)
    return mu, math.sqrt(sum((x - mu) ** 2 for x in xs) / len(xs))


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``task/label``: accuracy mean and std over seeds (ddof 0) and the other columns."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(f"{r['task']}/{r['label']}", []).append(r)
    agg = {}
    for key, rs in groups.items():
        acc, acc_std = _mean_std([100 * r["accuracy"] for r in rs])
        agg[key] = {
            "accuracy_pct": acc,
            "accuracy_std_pct": acc_std,
            "params": sorted({r["params"] for r in rs}),
            "active_fraction": _mean_std([r["active_fraction"] for r in rs])[0],
            "epoch_seconds": _mean_std([r["epoch_seconds"] for r in rs])[0],
            "seconds_per_step": _mean_std([r["seconds_per_step"] for r in rs])[0],
            "seeds": sorted(r["seed"] for r in rs),
        }
    return agg


# ---------------------------------------------------------------- tables


def _int(n: int) -> str:
    return f"{n:,}"


def _acc(a: dict[str, Any] | None) -> str:
    if a is None:
        return "not run"
    if len(a["seeds"]) == 1:
        return f"{a['accuracy_pct']:.1f} (1 seed)"
    return f"{a['accuracy_pct']:.1f} ± {a['accuracy_std_pct']:.1f}"


def _paper_acc(p: tuple[float, float | None, int] | None) -> str:
    if p is None:
        return "—"
    return f"{p[0]:.1f}" if p[1] is None else f"{p[0]:.1f} ± {p[1]:.1f}"


def _cols(a: dict[str, Any] | None) -> list[str]:
    if a is None:
        return ["—"] * 5
    return [
        " / ".join(_int(p) for p in a["params"]),
        f"{100 * a['active_fraction']:.2f}%",
        f"{a['epoch_seconds']:.2f}",
        f"{a['seconds_per_step']:.4f}",
        ", ".join(str(s) for s in a["seeds"]),
    ]


def _training_note(st: Settings) -> str:
    if st.training == BEFORE_TRAINING:
        return (
            "as before issue 18 (the paper's schedule: the epochs above, no selection split, "
            "the last epoch reported, no augmentation)"
        )
    extra = f" (`--set` {', '.join(st.training)})" if st.training else ""
    return (
        "the package default of issue 18: a selection split of 20% carved from the training "
        "split chooses the checkpoint, early stopping, at least `train.min_steps` optimiser "
        f"steps{extra}; the paper-config RSGN trains as the paper did"
    )


def render_tables(st: Settings, agg: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lr_note = (
        f"{meta['lr']:g} (`--lr`)"
        if st.lr is not None
        else f"config default ({RSGN_LR:g} for the RSGN, {PAPER_LR:g} for the baselines and the "
        "paper-config RSGN)"
    )
    lines = [
        f"# RSGN paper reproduction: {st.mode} mode",
        "",
        f"- Reproduce (trains what is missing, then writes these files): `{meta['reproduce']}`",
        f"- This file was written by: `{meta['command']}`",
        f"- Machine: {meta['machine']}",
        f"- Wall time of this invocation: {meta['wall_seconds']:.0f} s ({meta['ran']} runs "
        f"trained now, {meta['reused']} reused, {meta['failed']} failed); sum of the per-run wall "
        f"times: {meta['runs_wall_seconds']:.0f} s",
        *_last_training_line(meta),
        f"- Settings: {st.epochs} epochs"
        + "".join(f" ({t}: {e})" for t, e in st.task_epochs)
        + f", seeds {list(st.seeds)} (ablation: "
        f"{list(st.ablation_seeds)}), samples per task "
        + ", ".join(f"{t} {n:,}" for t, n in st.n_samples)
        + f" (80/20 split), batch {BATCH}, learning rate {lr_note}; seed s seeds the data and the "
        "initialisation.",
        f"- Training: {_training_note(st)}",
        "- Accuracy: validation accuracy of the reported checkpoint (the last epoch without a "
        "selection split; the best selection-split evaluation with one), mean ± std over seeds "
        "(std with ddof 0). Active "
        "fraction: measured on the validation set (RSGN: nodes active per propagation step; "
        "dense baselines 100%; MoE: fraction of expert capacity used). Train time: training "
        "seconds per epoch (no evaluation), and seconds per optimiser step.",
        "- Paper columns: spec §6 (the paper's runs, not measured here).",
    ]
    if st.mode in ("quick", "tiny"):
        lines += [
            "",
            f"**{st.mode} mode is a smoke test of the machinery, not the paper comparison:** "
            "too few epochs, samples and seeds for the accuracies to mean anything.",
        ]
    head = (
        "| model | accuracy % | paper accuracy % | parameters | paper parameters | "
        "active fraction | train s/epoch | s/step | seeds |"
    )
    for task in TASKS:
        lines += ["", f"## {TASK_TITLES[task]}", "", head, "|" + "---|" * 9]
        keys = list(MODELS)
        keys.sort(key=lambda k: -PAPER[task][k][0] if k in PAPER[task] else 1.0)
        for key in keys:
            a = agg.get(f"{task}/{key}")
            p = PAPER[task].get(key)
            c = _cols(a)
            pp = _int(p[2]) if p else "—"
            lines.append(
                f"| {TITLES[key]} | {_acc(a)} | {_paper_acc(p)} | {c[0]} | {pp} | "
                + " | ".join(c[1:])
                + " |"
            )
    lines += [
        "",
        "## Ablation (hierarchical task, RSGN + Hebbian, one setting changed at a time)",
        "",
        "| group | setting | accuracy % | paper accuracy % | parameters | active fraction | "
        "train s/epoch | s/step | seeds |",
        "|" + "---|" * 9,
    ]
    for p in ABLATION:
        label = SAME_AS_MAIN.get(p.name, p.name)
        a = agg.get(f"hierarchical/{label}")
        c = _cols(a)
        paper = "—" if p.paper is None else f"{p.paper:.1f}"
        lines.append(f"| {p.group} | {p.setting} | {_acc(a)} | {paper} | " + " | ".join(c) + " |")
    if meta.get("estimate"):
        e = meta["estimate"]
        lines += [
            "",
            "## Estimated full-study time (an estimate, not a measurement)",
            "",
            f"From this run's measured seconds per step and per-epoch overhead, scaled to the full "
            f"study ({e['n_runs']} runs, {PRESETS['full'].epochs} epochs, long-range "
            f"{PRESETS['full'].epochs_for('long-range')}, "
            f"{FULL_SAMPLES['hierarchical']:,} / {FULL_SAMPLES['long-range']:,} samples): "
            f"about {e['serial_hours']:.1f} h of training with one worker at this run's thread "
            f"count ({e['threads']}), about {e['serial_hours'] / 2:.1f} h with `--workers 2` if "
            f"both cores are free. Ablation points not in this run are timed like the default "
            f"RSGN: {', '.join(e['timed_as_default']) or 'none'}.",
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- estimate


def estimate_full(runs: list[dict[str, Any]], threads: int) -> dict[str, Any] | None:
    """Serial training time of the full study from measured per-step and per-epoch costs."""
    by_label: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        by_label.setdefault((r["task"], r["label"]), []).append(r)
    full = PRESETS["full"]
    total, fallback = 0.0, []
    for spec in plan(full):
        rs = by_label.get((spec.task, spec.label))
        if not rs and spec.label not in MODELS:
            rs = by_label.get((spec.task, "rsgn-hebbian"))
            fallback.append(spec.label)
        if not rs:
            return None
        r = rs[0]
        n_train = spec.n_samples - round(0.2 * spec.n_samples)
        n_val = spec.n_samples - n_train
        steps = math.ceil(n_train / BATCH) * spec.epochs
        # wall time outside the optimiser steps: data, model build, per-epoch evaluation and
        # checkpoint; scaled per epoch and by the validation-set size
        wall = r["wall_seconds"] if r["wall_seconds"] is not None else r["train_seconds"]
        other = max(0.0, wall - r["train_seconds"]) / (r["epochs"] + 1)
        total += r["seconds_per_step"] * steps + other * n_val / r["n_val"] * (spec.epochs + 1)
    return {
        "n_runs": len(plan(full)),
        "serial_seconds": total,
        "serial_hours": total / 3600,
        "threads": threads,
        "timed_as_default": sorted(set(fallback)),
    }


# ---------------------------------------------------------------- plots


def _atomic_savefig(fig, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def plot(runs: list[dict[str, Any]], agg: dict[str, dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    colors = {k: plt.get_cmap("tab10")(i) for i, k in enumerate(MODELS)}
    files = []

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    for ax, task in zip(axes, TASKS, strict=True):
        for key in MODELS:
            a = agg.get(f"{task}/{key}")
            if a is not None:
                ax.errorbar(
                    a["params"][0], a["accuracy_pct"], yerr=a["accuracy_std_pct"], fmt="o",
                    color=colors[key], label=f"{TITLES[key]} (measured)", capsize=3,
                )  # fmt: skip
            p = PAPER[task].get(key)
            if p is not None:
                ax.scatter(p[2], p[0], marker="s", facecolors="none", edgecolors=colors[key])
        ax.scatter([], [], marker="s", facecolors="none", edgecolors="k", label="paper (spec §6)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap at 2e5..6e5
        ax.set_xlabel("trainable parameters")
        ax.set_ylabel("validation accuracy %")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    seen: dict[str, Any] = {}
    for ax in axes:  # one legend for both panels, under them (inside, it hid points)
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=4, fontsize=8)
    fig.subplots_adjust(bottom=0.24)
    path = out / "accuracy_vs_params.png"
    _atomic_savefig(fig, path)
    plt.close(fig)
    files.append(path.name)

    main_labels = set(MODELS)
    for name, pick, color_of in (
        ("training_curves.png", lambda r: r["label"] in main_labels, lambda r: colors[r["label"]]),
        (
            "ablation_curves.png",
            lambda r: r["task"] == "hierarchical" and r["label"] not in main_labels,
            None,
        ),
    ):
        sel = [r for r in runs if pick(r)]
        if not sel:
            continue
        tasks = [t for t in TASKS if any(r["task"] == t for r in sel)]
        fig, axes = plt.subplots(2, len(tasks), figsize=(6 * len(tasks), 7), squeeze=False)
        cmap = plt.get_cmap("tab20")
        labels = sorted({r["label"] for r in sel})
        for j, task in enumerate(tasks):
            seen = set()
            for r in sorted(sel, key=lambda r: (r["label"], r["seed"])):
                if r["task"] != task:
                    continue
                c = color_of(r) if color_of else cmap(labels.index(r["label"]) % 20)
                lab = None if r["label"] in seen else TITLES.get(r["label"], r["label"])
                seen.add(r["label"])
                ep = [h["epoch"] for h in r["history"]]
                va = [100 * h["val_accuracy"] for h in r["history"]]
                tl = [h["train_loss"] for h in r["history"]]
                axes[0, j].plot(ep, va, "-o", ms=2, color=c, lw=1, label=lab)
                axes[1, j].plot(ep, tl, "-o", ms=2, color=c, lw=1)
            axes[0, j].set_title(f"{task}: validation accuracy % (one line per run)")
            axes[1, j].set_title(f"{task}: training loss")
            axes[1, j].set_xlabel("epoch")
            for ax in axes[:, j]:
                ax.grid(alpha=0.3)
            # outside the axes, right of the top panel (inside, it hid the curves)
            axes[0, j].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        path = out / name
        _atomic_savefig(fig, path)
        plt.close(fig)
        files.append(path.name)
    return files


# ---------------------------------------------------------------- driver


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs{mem}, "
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )


def run_study(
    st: Settings,
    out: Path,
    runs_dir: Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    only: list[str] | None = None,
    command: str = "",
    echo=print,
    report_only: bool = False,
) -> dict[str, Any]:
    """Train the planned runs that have no ``metrics.json`` yet, then write the results
    (``report_only``: train nothing, write the results of the runs finished so far)."""
    import torch

    from rsgn.checkpoint import atomic_write_bytes, atomic_write_json

    t0 = time.perf_counter()
    runs = plan(st)
    todo = [s for s, names in runs.items() if selected(s, names, only)]
    if only and not todo:
        raise SystemExit(f"--only {' '.join(only)} selects no run of the {st.mode} study")
    pending = [s for s in todo if not (s.folder(runs_dir, st.mode) / "metrics.json").exists()]
    echo(f"{st.mode}: {len(todo)} runs selected, {len(todo) - len(pending)} already done")
    if report_only:
        todo = [s for s in todo if s not in pending]
        pending = []
        echo("--report: training nothing, writing the results of the finished runs")
    failed: list[dict[str, str]] = []

    def report(i: int, spec: RunSpec, res: dict[str, Any] | None, err: BaseException | None):
        if err is not None:
            failed.append({"id": spec.id, "error": f"{type(err).__name__}: {err}"})
            echo(f"[{i}/{len(pending)}] {spec.id} FAILED: {type(err).__name__}: {err}")
        else:
            echo(
                f"[{i}/{len(pending)}] {spec.id} accuracy {100 * res['accuracy']:.1f}% "
                f"({res['wall_seconds']:.1f} s)"
            )

    if workers <= 1:
        if threads:
            torch.set_num_threads(threads)
        for i, spec in enumerate(pending, 1):
            try:
                res = execute(spec, str(spec.folder(runs_dir, st.mode)), threads)
                report(i, spec, res, None)
            except Exception as exc:  # one failed run must not stop the study
                report(i, spec, None, exc)
    else:
        from rsgn.workers import watched_pool

        with watched_pool(workers) as pool:
            futs = {
                pool.submit(execute, s, str(s.folder(runs_dir, st.mode)), threads): s
                for s in pending
            }
            for i, fut in enumerate(as_completed(futs), 1):
                try:
                    report(i, futs[fut], fut.result(), None)
                except Exception as exc:
                    report(i, futs[fut], None, exc)

    done = [r for s in runs if (r := load_run(s, s.folder(runs_dir, st.mode))) is not None]
    agg = aggregate(done)
    n_threads = threads or torch.get_num_threads()
    meta = {
        "command": command,
        "reproduce": reproduce_command(st),
        "machine": machine(),
        "threads_per_run": n_threads,
        "workers": workers,
        "lr": st.lr if st.lr is not None else {"rsgn": RSGN_LR, "baselines": PAPER_LR},
        "lr_source": "--lr" if st.lr is not None else "config default",
        "wall_seconds": time.perf_counter() - t0,
        "runs_wall_seconds": sum(r["wall_seconds"] or 0.0 for r in done),
        "ran": len(pending) - len(failed),
        "reused": len(todo) - len(pending),
        "failed": len(failed),
        "missing": sorted(s.id for s in runs if s.id not in {r["id"] for r in done}),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    meta["last_training"] = _last_training(meta, out / "results.json")
    if st.mode == "quick":
        meta["estimate"] = estimate_full(done, n_threads)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot(done, agg, out) if done else []
    tables = render_tables(st, agg, meta)
    atomic_write_bytes(out / "tables.md", tables.encode())
    results = {
        "settings": dataclasses.asdict(st),
        "meta": meta,
        "failed": failed,
        "paper": {t: {k: list(v) for k, v in d.items()} for t, d in PAPER.items()},
        "paper_ablation": {f"{p.group}={p.setting}": p.paper for p in ABLATION if p.paper},
        "aggregate": agg,
        "plots": plots,
        "runs": done,
    }
    atomic_write_json(out / "results.json", results)
    for name in ("tables.md", "results.json", *plots):
        os.chmod(out / name, 0o644)  # committed files: the atomic writers create them 0600
    echo(f"wrote {out / 'tables.md'}, {out / 'results.json'}, {', '.join(plots)}")
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2 epochs, 1 seed, 600 samples")
    mode.add_argument("--tiny", action="store_true", help="1 epoch, 60 samples, 2 models (tests)")
    mode.add_argument(
        "--generalised",
        action="store_true",
        help="the full study with the default training of issue 18 (selection split, early "
        "stopping, min_steps) -> generalised/; the full mode trains as before issue 18",
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of the hierarchical task's runs (default: the mode's, 50 except quick/"
        "tiny); a changed count trains into its own folders and writes MODE-eN/",
    )
    ap.add_argument("--workers", type=int, default=1, help="parallel runs (process pool)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run")
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only matching runs: a task, model, ablation point, 'main', 'ablation', or a "
        "glob on TASK/LABEL/seedN (repeatable); tables still show every finished run",
    )
    ap.add_argument(
        "--lr", type=float, default=None, help="learning rate of every run (default: config's)"
    )
    ap.add_argument(
        "--report",
        action="store_true",
        help="train nothing: write the tables and plots of the runs finished so far",
    )
    ap.add_argument("--out", type=Path, default=None, help="results folder (default: ./MODE/)")
    ap.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="run folders (gitignored)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    if args.epochs is not None and args.epochs < 1:
        ap.error("--epochs must be at least 1")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        ap.error("--lr must be a positive number")
    return args


def _last_training(meta: dict, previous: Path) -> dict | None:
    """The latest invocation that trained something: this one, or the one recorded in the
    results file this invocation replaces (so ``--report`` keeps its wall time)."""
    if meta["ran"]:
        return {k: meta[k] for k in ("command", "wall_seconds", "ran", "reused", "date")}
    try:
        old = json.loads(previous.read_text())["meta"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if old.get("last_training"):
        return old["last_training"]
    if old.get("ran"):
        return {k: old.get(k) for k in ("command", "wall_seconds", "ran", "reused", "date")}
    return None


def _last_training_line(meta: dict) -> list[str]:
    last = meta.get("last_training")
    if not last or last.get("command") == meta["command"]:
        return []
    return [
        f"- Last invocation that trained: `{last['command']}` ({last.get('date')}): "
        f"{last['wall_seconds']:.0f} s, {last['ran']} runs trained, {last['reused']} reused"
    ]


def reproduce_command(st: Settings) -> str:
    """The command that runs the whole study of ``st``'s mode on a 2-core CPU."""
    base, _, epochs = st.mode.partition("-e")
    flag = {"full": [], "quick": ["--quick"], "tiny": ["--tiny"], "generalised": ["--generalised"]}[
        base
    ] + (["--epochs", epochs] if epochs else [])
    lr = [] if st.lr is None else ["--lr", repr(st.lr)]
    args = ["python", "studies/paper_reproduction/run.py", *flag, *lr, "--workers", "2"]
    return "OMP_NUM_THREADS=1 " + shlex.join([*args, "--threads", "1"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = (
        "quick"
        if args.quick
        else "tiny"
        if args.tiny
        else "generalised"
        if args.generalised
        else "full"
    )
    st = dataclasses.replace(PRESETS[mode], lr=args.lr)
    if args.epochs is not None and args.epochs != st.epochs:  # its own run folders and tables
        st = dataclasses.replace(st, mode=f"{mode}-e{args.epochs}", epochs=args.epochs)
    out = args.out or STUDY_DIR / st.mode
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "studies/paper_reproduction/run.py", *shown])
    if os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    res = run_study(
        st,
        out,
        args.runs,
        workers=args.workers,
        threads=args.threads,
        only=args.only,
        command=command,
        report_only=args.report,
    )
    return 1 if res["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
