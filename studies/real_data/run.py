"""RSGN and the baselines on standard time-series classification sets, beside 1-NN Euclidean and
aeon's MiniRocket computed here on the same splits.

    OMP_NUM_THREADS=1 python studies/real_data/run.py --workers 2          # full -> full/
    OMP_NUM_THREADS=1 python studies/real_data/run.py --quick              # smoke -> quick/

Data: the aeon-bundled sets (``rsgn.aeon_data``, nothing downloaded), official train/test split,
each channel z-normalised with the training split's statistics, unequal-length series
zero-padded with ``lengths`` (padded steps are inert in every model). Every neural model
trains with ``rsgn.training.train`` (its selection split is carved from the training split; the
test split is only measured); 1-NN Euclidean (aeon ``KNeighborsTimeSeriesClassifier``) and
MiniRocket (aeon ``MiniRocketClassifier``) see the same arrays (padded, z-normalised).

Rows: ``rsgn`` (the package default), ``rsgn-before`` (the same model trained as before issue
18: 50 epochs, no selection split, no minimum step count), ``rsgn-paper`` (``--config paper``,
the paper's model and training) and the baselines of :mod:`rsgn.baselines`. Each training runs
in ``ckpt_runs/MODE/SET/MODEL/seedN`` (gitignored); a finished run is reused, an interrupted
one resumes, so rerunning the command continues the study.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shlex
import sys
import time
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

STUDY_DIR = Path(__file__).resolve().parent
DEFAULT_RUNS = STUDY_DIR / "ckpt_runs"
SETS = ("JapaneseVowels", "BasicMotions", "GunPoint", "ArrowHead")
MODELS = (
    "rsgn",
    "rsgn-noaug",
    "rsgn-tokens",
    "rsgn-tokens-drop",
    "rsgn-before",
    "rsgn-paper",
    "conv",
    "transformer",
    "sparse-transformer",
    "lstm",
    "mlp",
    "moe",
)
TITLES = {
    "rsgn": "RSGN (default)",
    "rsgn-noaug": "RSGN default, no augmentation",
    "rsgn-tokens": "RSGN default, no augmentation, patch tokens + time channel",
    "rsgn-tokens-drop": "RSGN default, no augmentation, patch tokens + time channel, dropout 0.2",
    "rsgn-before": "RSGN default, trained as before issue 18",
    "rsgn-paper": "RSGN, paper config and training",
    "conv": "Conv + max-pool",
    "transformer": "Transformer",
    "sparse-transformer": "Sparse Transformer",
    "lstm": "LSTM",
    "mlp": "MLP",
    "moe": "MoE",
    "1nn": "1-NN Euclidean (aeon)",
    "minirocket": "MiniRocket (aeon)",
}
# Training before issue 18: epochs only, no selection split, no early stop, no augmentation.
BEFORE_TRAINING = (
    "train.min_steps=0",
    "train.eval_interval=0",
    "train.patience=0",
    "data.select_fraction=0",
    "train.augment_jitter=0",
    "train.augment_scale=0",
    "train.augment_shift=0",
)
# The default training without its time-series augmentation (chosen for the real sets on the
# selection split by screen/screen.py: see README "Augmentation on real data").
NO_AUGMENTATION = ("train.augment_jitter=0", "train.augment_scale=0", "train.augment_shift=0")
# Tokens of 4 steps with the token's position as a feature (rsgn.data.tokenise), chosen by the
# ArrowHead selection-split screen (README, 'Patch tokens and a time channel').
TOKENS = ("data.patch_len=4", "data.time_channel=true")
# ... and feature dropout 0.2 (chosen by the same screen among regularisers of the fitted model)
TOKENS_DROPOUT = ("model.feature_dropout=0.2",)
# The issue's table (one run each on main when the issue was filed: rsgn train --data X.npz
# --epochs 50, z-normalised, zero-padded), for the before/after comparison.
ISSUE_TABLE = {
    "JapaneseVowels": {"rsgn": 0.984, "conv": 0.973, "transformer": 0.984, "1nn": 0.916,
                       "minirocket": 0.997},
    "BasicMotions": {"rsgn": 0.900, "conv": 0.600, "transformer": 0.950, "1nn": 0.575,
                     "minirocket": 1.000},
    "GunPoint": {"rsgn": 0.607, "conv": 0.573, "transformer": 0.807, "1nn": 0.913,
                 "minirocket": 0.993},
    "ArrowHead": {"rsgn": 0.394, "conv": 0.629, "transformer": 0.549, "1nn": 0.800,
                  "minirocket": 0.863},
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Settings:
    mode: str
    sets: tuple[str, ...]
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...] = ()
    """Extra ``--set`` strings for every neural run (quick mode shortens training)."""
    minirocket: bool = True


PRESETS = {
    "full": Settings("full", SETS, MODELS, (0, 1, 2)),
    "quick": Settings(
        "quick",
        ("BasicMotions",),
        ("rsgn", "rsgn-paper", "conv", "mlp"),
        (0,),
        ("train.epochs=2", "train.min_steps=4", "train.eval_interval=1"),
    ),
}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    data: str
    model: str
    seed: int
    overrides: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.data}/{self.model}/seed{self.seed}"

    def folder(self, runs: Path, mode: str) -> Path:
        return runs / mode / self.data / self.model / f"seed{self.seed}"


def run_specs(st: Settings, seeds: tuple[int, ...]) -> list[RunSpec]:
    return [RunSpec(d, m, s, st.overrides) for d in st.sets for m in st.models for s in seeds]


def run_config(spec: RunSpec):
    from rsgn.config import apply_overrides, load_config

    base = load_config("paper" if spec.model == "rsgn-paper" else None)
    ov = [f"train.seed={spec.seed}", "data.znorm=true"]
    if spec.model == "rsgn-before":
        ov += BEFORE_TRAINING
    if spec.model in ("rsgn-noaug", "rsgn-tokens", "rsgn-tokens-drop"):
        ov += NO_AUGMENTATION
    if spec.model in ("rsgn-tokens", "rsgn-tokens-drop"):
        ov += TOKENS
    if spec.model == "rsgn-tokens-drop":
        ov += TOKENS_DROPOUT
    return apply_overrides(base, [*ov, *spec.overrides])


def execute(spec: RunSpec, run_dir: str, threads: int | None) -> dict[str, Any]:
    """Train ``spec`` in ``run_dir`` (resuming there); the run's metrics."""
    import torch

    from rsgn.checkpoint import atomic_write_json
    from rsgn.data import make_task
    from rsgn.malloc_tuning import tune_malloc
    from rsgn.training import train

    tune_malloc()
    if threads:
        torch.set_num_threads(threads)
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = run_config(spec)
    ds = make_task(f"aeon:{spec.data}", cfg.data, seed=spec.seed)
    model = None if spec.model.startswith("rsgn") else spec.model
    with open(out / "train.log", "a") as log:
        m = train(cfg, ds, out, model=model, resume=True, log=log)
    wall = time.perf_counter() - t0
    atomic_write_json(out / "study_run.json", {"id": spec.id, "wall_seconds": wall})
    return {"id": spec.id, "accuracy": m["accuracy"], "wall_seconds": wall}


def load_run(spec: RunSpec, run_dir: Path) -> dict[str, Any] | None:
    mpath = run_dir / "metrics.json"
    if not mpath.exists():
        return None
    from rsgn.checkpoint import saved_config

    m = json.loads(mpath.read_text())
    if saved_config(m["config"], str(mpath)).to_dict() != run_config(spec).to_dict():
        raise SystemExit(f"{mpath}: config differs from this study's; move it or pass --runs")
    e = m.get("energy_per_inference") or {}
    side = run_dir / "study_run.json"
    return {
        "id": spec.id,
        "data": spec.data,
        "model": spec.model,
        "seed": spec.seed,
        "accuracy": m["accuracy"],
        "params": m["params"],
        "active_fraction": m["active_fraction"],
        "energy_per_inference_j": e.get("value") if e.get("kind") == "modelled" else None,
        "train_steps": m["train_steps"],
        "epochs_run": m["epochs_run"],
        "selected_epoch": m["selection"].get("epoch"),
        "stopped_early": m["selection"].get("stopped_early"),
        "splits": m["splits"],
        "train_seconds": m["train_seconds"],
        "seconds_per_step": m["seconds_per_step"],
        "wall_seconds": json.loads(side.read_text())["wall_seconds"] if side.exists() else None,
    }


def classical(data: str, seeds: tuple[int, ...], minirocket: bool) -> list[dict[str, Any]]:
    """1-NN Euclidean (deterministic: one row) and MiniRocket (one row per seed) on the same
    z-normalised, padded arrays the networks get."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    from rsgn.aeon_data import load_aeon

    ds = load_aeon(data, znorm=True)
    xtr, xte = ds.x_train.numpy().transpose(0, 2, 1), ds.x_val.numpy().transpose(0, 2, 1)
    ytr, yte = ds.y_train.numpy(), ds.y_val.numpy()
    rows = []
    t0 = time.perf_counter()
    knn = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="euclidean").fit(xtr, ytr)
    acc = float((knn.predict(xte) == yte).mean())
    rows.append({"data": data, "model": "1nn", "seed": 0, "accuracy": acc,
                 "seconds": time.perf_counter() - t0})  # fmt: skip
    for seed in seeds if minirocket else ():
        t0 = time.perf_counter()
        clf = MiniRocketClassifier(random_state=seed, n_jobs=1).fit(xtr, ytr)
        acc = float((clf.predict(xte) == yte).mean())
        rows.append({"data": data, "model": "minirocket", "seed": seed, "accuracy": acc,
                     "seconds": time.perf_counter() - t0})  # fmt: skip
    return rows


def _mean_std(xs: list[float]) -> tuple[float, float]:
    mu = sum(xs) / len(xs)
    return mu, math.sqrt(sum((x - mu) ** 2 for x in xs) / len(xs))


def aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``SET/MODEL``: accuracy mean and std over seeds (ddof 0) and the other columns."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['data']}/{r['model']}", []).append(r)
    agg = {}
    for key, rs in groups.items():
        mu, sd = _mean_std([r["accuracy"] for r in rs])
        a: dict[str, Any] = {
            "accuracy": mu,
            "accuracy_std": sd,
            "seeds": sorted(r["seed"] for r in rs),
        }
        if "params" in rs[0]:
            energies = [r["energy_per_inference_j"] for r in rs if r["energy_per_inference_j"]]
            a.update(
                params=rs[0]["params"],
                active_fraction=_mean_std([r["active_fraction"] for r in rs])[0],
                energy_per_inference_j=_mean_std(energies)[0] if energies else None,
                train_steps=_mean_std([r["train_steps"] for r in rs])[0],
                seconds_per_step=_mean_std([r["seconds_per_step"] for r in rs])[0],
            )
        agg[key] = a
    return agg


def _fmt_acc(a: dict[str, Any] | None) -> str:
    if a is None:
        return "not run"
    if len(a["seeds"]) == 1:
        return f"{a['accuracy']:.3f} (1 seed)"
    return f"{a['accuracy']:.3f} ± {a['accuracy_std']:.3f}"


def render(st: Settings, agg: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Real data: {st.mode} mode",
        "",
        f"- Written by: `{meta['command']}` ({meta['date']})",
        f"- Machine: {meta['machine']}",
        f"- Wall time of this invocation: {meta['wall_seconds']:.0f} s ({meta['ran']} trainings "
        f"now, {meta['reused']} reused, {meta['failed']} failed)",
        "- Accuracy on the official test split, mean ± std over seeds (ddof 0); 1-NN is "
        "deterministic (one row). Active fraction: RSGN nodes active per step (dense baselines "
        "1.0; MoE: expert capacity used). Energy: the torch target's modelled energy per "
        "inference (electronic_45nm preset; baselines: the same model over their counted MACs "
        "and memory words).",
        "- Issue column: the issue's table (one run on main when it was filed).",
    ]
    if st.mode != "full":
        lines += ["", f"**{st.mode} mode is a smoke test of the machinery, not a result.**"]
    for data in st.sets:
        lines += [
            "",
            f"## {data}",
            "",
            "| model | accuracy | issue | parameters | active fraction | energy / inference | "
            "steps | s/step |",
            "|" + "---|" * 8,
        ]
        for key in (*st.models, "1nn", "minirocket"):
            a = agg.get(f"{data}/{key}")
            if a is None and key not in st.models:
                continue
            issue = ISSUE_TABLE.get(data, {}).get(key)
            issue_s = "—" if issue is None else f"{issue:.3f}"
            if a is not None and "params" in a:
                e = a["energy_per_inference_j"]
                cols = [
                    f"{a['params']:,}",
                    f"{a['active_fraction']:.4f}",
                    "n/a" if e is None else f"{e * 1e6:.2f} µJ",
                    f"{a['train_steps']:.0f}",
                    f"{a['seconds_per_step']:.3f}",
                ]
            else:
                cols = ["—"] * 5
            lines.append(
                f"| {TITLES[key]} | {_fmt_acc(a)} | {issue_s} | " + " | ".join(cols) + " |"
            )
    return "\n".join(lines) + "\n"


def machine() -> str:
    import torch

    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )


def run_study(
    st: Settings,
    out: Path,
    runs_dir: Path,
    *,
    seeds: tuple[int, ...],
    workers: int = 1,
    threads: int | None = 1,
    command: str = "",
    echo=print,
    report_only: bool = False,
) -> dict[str, Any]:
    """Train the missing runs (none with ``report_only``), compute the classical rows, write
    ``tables.md`` and ``results.json`` into ``out``; tables show the finished runs."""
    from rsgn.checkpoint import atomic_write_bytes, atomic_write_json

    t0 = time.perf_counter()
    specs = run_specs(st, seeds)
    pending = [s for s in specs if not (s.folder(runs_dir, st.mode) / "metrics.json").exists()]
    echo(f"{st.mode}: {len(specs)} trainings, {len(specs) - len(pending)} already done")
    if report_only:
        echo("--report: training nothing")
        specs = [s for s in specs if s not in pending]
        pending = []
    failed: list[dict[str, str]] = []

    def done(i: int, spec: RunSpec, res: dict | None, err: BaseException | None) -> None:
        if err is not None:
            failed.append({"id": spec.id, "error": f"{type(err).__name__}: {err}"})
            echo(f"[{i}/{len(pending)}] {spec.id} FAILED: {type(err).__name__}: {err}")
        else:
            acc, wall = res["accuracy"], res["wall_seconds"]
            echo(f"[{i}/{len(pending)}] {spec.id} {acc:.3f} ({wall:.0f} s)")

    if workers <= 1:
        for i, spec in enumerate(pending, 1):
            try:
                done(i, spec, execute(spec, str(spec.folder(runs_dir, st.mode)), threads), None)
            except Exception as exc:  # one failed run must not stop the study
                done(i, spec, None, exc)
    else:
        from rsgn.workers import watched_pool

        with watched_pool(workers) as pool:
            futs = {
                pool.submit(execute, s, str(s.folder(runs_dir, st.mode)), threads): s
                for s in pending
            }
            for i, fut in enumerate(as_completed(futs), 1):
                try:
                    done(i, futs[fut], fut.result(), None)
                except Exception as exc:
                    done(i, futs[fut], None, exc)
    rows = [r for s in specs if (r := load_run(s, s.folder(runs_dir, st.mode))) is not None]
    classic = [r for d in st.sets for r in classical(d, seeds, st.minirocket)]
    agg = aggregate(rows + classic)
    meta = {
        "command": command,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "wall_seconds": time.perf_counter() - t0,
        "ran": len(pending) - len(failed),
        "reused": len(specs) - len(pending),
        "failed": len(failed),
        "missing": sorted({s.id for s in run_specs(st, seeds)} - {r["id"] for r in rows}),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "tables.md", render(st, agg, meta).encode())
    atomic_write_json(
        out / "results.json",
        {
            "settings": dataclasses.asdict(st),
            "seeds": list(seeds),
            "meta": meta,
            "failed": failed,
            "issue_table": ISSUE_TABLE,
            "aggregate": agg,
            "runs": rows,
            "classical": classic,
        },
    )
    for name in ("tables.md", "results.json"):
        os.chmod(out / name, 0o644)
    echo(f"wrote {out / 'tables.md'}, {out / 'results.json'}")
    return {"failed": failed, "aggregate": agg}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one set, 4 models, 2 epochs, 1 seed")
    ap.add_argument("--workers", type=int, default=1, help="parallel trainings")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the mode's)")
    ap.add_argument("--models", default=None, help="comma-separated subset of the models")
    ap.add_argument("--sets", default=None, help="comma-separated subset of the sets")
    ap.add_argument("--no-minirocket", action="store_true", help="skip MiniRocket")
    ap.add_argument(
        "--report", action="store_true", help="train nothing: tables of the finished runs"
    )
    ap.add_argument("--out", type=Path, default=None, help="results folder (default ./MODE/)")
    ap.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="run folders (gitignored)")
    args = ap.parse_args(argv)
    st = PRESETS["quick" if args.quick else "full"]
    for key, known in (("models", MODELS), ("sets", None)):
        val = getattr(args, key)
        if val:
            names = tuple(v.strip() for v in val.split(","))
            bad = [n for n in names if known is not None and n not in known]
            if bad:
                ap.error(f"unknown --{key} {bad} (known: {', '.join(known)})")
            st = dataclasses.replace(st, **{key: names})
    if args.no_minirocket:
        st = dataclasses.replace(st, minirocket=False)
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else st.seeds
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "studies/real_data/run.py", *shown])
    if os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    res = run_study(
        st,
        args.out or STUDY_DIR / st.mode,
        args.runs,
        seeds=seeds,
        workers=args.workers,
        threads=args.threads,
        command=command,
        report_only=args.report,
    )
    return 1 if res["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
