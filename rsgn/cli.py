"""The ``rsgn`` command line: ``train``, ``eval``, ``compare``, ``sweep``, ``backends``, ``demo``.

Every user error prints one line, ``rsgn: error: <what is wrong>``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import rsgn
from rsgn.errors import RsgnError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--task",
        help="built-in task: hierarchical | long-range, or aeon:NAME (a set bundled with the "
        "aeon package, official train/test split; pip install 'rsgn[data]')",
    )
    g.add_argument(
        "--data", help=".npz with X [n,T,F], y [n] (optional X_val, y_val, lengths, lengths_val)"
    )


def _add_target_args(p: argparse.ArgumentParser, metavar: str, example: str) -> None:
    p.add_argument(
        "--backend-arg",
        dest="backend_args",
        action="append",
        default=[],
        metavar=metavar,
        help=f"a typed target option, e.g. --backend-arg {example} (repeatable; a wrong key "
        "lists the target's options)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rsgn", description="Resonant Sparse Geometry Networks")
    p.add_argument("--version", action="version", version=f"rsgn {rsgn.__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a model and write a checkpoint + metrics.json")
    _add_data_args(t)
    t.add_argument(
        "--model",
        default=None,
        help="rsgn (default) or a baseline: transformer, sparse-transformer, lstm, mlp, moe "
        "(with --resume: the run's own model)",
    )
    t.add_argument(
        "--model-arg",
        dest="model_args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="baseline constructor argument, e.g. --model-arg n_layers=3 (repeatable); on a "
        "built-in task the paper's sizes apply unless overridden",
    )
    t.add_argument("--backend", default=None, help="backend name (default: $RSGN_BACKEND or torch)")
    t.add_argument("--preset", default=None, help="the backend's hardware/energy preset")
    _add_target_args(t, "KEY=VALUE", "compile=eager")
    t.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel training: spawn N processes (DistributedDataParallel; gloo on the "
        "CPU, NCCL with one GPU per process); train.batch_size is the global batch. Or launch "
        "with torchrun --nproc-per-node N -m rsgn.cli train ...",
    )
    t.add_argument("--config", default=None, help="TOML config with [model] [train] [data]")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.n_nodes=128 (repeatable)",
    )
    t.add_argument("--epochs", type=int, default=None, help="train.epochs (with --resume: extend)")
    t.add_argument("--seed", type=int, default=None, help="train.seed: data split and init")
    t.add_argument("--out", required=True, help="run folder (checkpoint.pt, metrics.json)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")

    e = sub.add_parser("eval", help="evaluate a checkpoint; prints JSON")
    e.add_argument("--ckpt", required=True, help="run folder or checkpoint file")
    _add_data_args(e)
    e.add_argument("--backend", default=None, help="target (default: $RSGN_BACKEND or torch)")
    e.add_argument("--preset", default=None, help="the backend's hardware/energy preset")
    _add_target_args(e, "KEY=VALUE", "node_split=8")
    e.add_argument("--batch-size", type=int, default=256, help="samples per program call")
    e.add_argument("--limit", type=int, default=None, help="use the first N validation samples")
    e.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="noise draws of a noisy target (seeds seed ... seed+R-1): accuracy as mean, std "
        "and 95%% CI (default 1)",
    )
    e.add_argument("--out", default=None, help="also write the JSON report to this file")

    c = sub.add_parser(
        "compare", help="run one checkpoint on several backends; write a comparison report"
    )
    c.add_argument("--ckpt", required=True, help="run folder or checkpoint file")
    _add_data_args(c)
    c.add_argument(
        "--backends",
        default=None,
        help="comma-separated rows TARGET[:PRESET], e.g. torch,optical:ideal,optical:bench "
        "(default torch,triton,optical,neuromorphic; a target that runs here only emulated, "
        "Triton under TRITON_INTERPRET=1, only when listed)",
    )
    c.add_argument(
        "--preset",
        dest="presets",
        action="append",
        default=[],
        metavar="BACKEND=NAME",
        help="preset of a target listed without one, e.g. --preset optical=bench (repeatable)",
    )
    _add_target_args(c, "TARGET.KEY=VALUE", "neuromorphic.node_split=8")
    c.add_argument(
        "--out",
        default=None,
        help="report folder (default: <run folder>/compare; an existing report gets a "
        "numbered sibling, never overwritten)",
    )
    c.add_argument(
        "--baseline",
        dest="baselines",
        action="append",
        default=[],
        metavar="RUN",
        help="a trained baseline (Transformer, LSTM...) run folder: one more row on plain torch, "
        "costed on the same electronic model (repeatable)",
    )
    c.add_argument("--limit", type=int, default=None, help="use the first N validation samples")
    c.add_argument("--batch-size", type=int, default=64, help="samples per program call")

    s = sub.add_parser("sweep", help="run a grid or random sweep from a TOML file (cached)")
    s.add_argument("config", help="sweep TOML ([sweep], [base], [grid] or [random], [eval])")
    s.add_argument("--executor", default="local", help="local (process pool, default) or ray")
    s.add_argument("--workers", type=int, default=None, help="parallel units (default: CPUs)")
    s.add_argument("--out", default=None, help="sweep folder (default: the [sweep] out key)")

    sub.add_parser("backends", help="list the backends and whether each is available")

    d = sub.add_parser("demo", help="train briefly on a built-in task, evaluate, print a summary")
    d.add_argument("--task", default="hierarchical", help="built-in task")
    d.add_argument("--epochs", type=int, default=8, help="training epochs")
    d.add_argument("--samples", type=int, default=3000, help="samples generated (80%% train)")
    d.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate")
    d.add_argument("--out", default=None, help="keep the run here (default: a temp folder)")
    _add_target_args(d, "KEY=VALUE", "compile=eager")
    return p


def _load_data(args, seed: int, cfg=None, n_classes: int | None = None):
    from rsgn.config import DataConfig
    from rsgn.data import load_data

    data = cfg.data if cfg else DataConfig()
    return load_data(data, task=args.task, npz=args.data, seed=seed, n_classes=n_classes)


def _model_kwargs(args) -> dict | None:
    """Checked baseline arguments from ``--model``/``--model-arg`` (the paper's sizes on a
    built-in task, then the flags); None for the RSGN."""
    from rsgn.baselines import BASELINES, paper_kwargs, parse_model_args

    name = args.model
    if name is not None and name != "rsgn" and name not in BASELINES:
        raise RsgnError(f"unknown model {name!r} (known: {', '.join(('rsgn', *BASELINES))})")
    if name in (None, "rsgn"):
        if args.model_args:
            raise RsgnError(
                "--model-arg applies to baselines (--model NAME); set RSGN options with "
                "--set model.KEY=VALUE"
            )
        return None
    return {**paper_kwargs(name, args.task), **parse_model_args(name, args.model_args)}


def _saved_config(out: Path):
    """The config of the run in ``out`` (None if there is no checkpoint yet)."""
    from rsgn.checkpoint import CKPT_NAME, load_model

    if not (out / CKPT_NAME).is_file():
        return None
    return load_model(out / CKPT_NAME)[1]


def cmd_train(args: argparse.Namespace) -> int:
    from rsgn.config import apply_overrides, load_config
    from rsgn.data import check_trainable
    from rsgn.training import train

    if Path(args.out).is_file():
        raise RsgnError(f"--out {args.out} is a file, not a run folder")
    if args.nproc < 1:
        raise RsgnError(f"--nproc must be at least 1, got {args.nproc}")
    ov = list(args.overrides)
    if args.epochs is not None:
        ov.append(f"train.epochs={args.epochs}")
    if args.seed is not None:
        ov.append(f"train.seed={args.seed}")
    saved = _saved_config(Path(args.out)) if args.resume else None
    # resuming: the flags given are changes to the saved run (refused unless a longer --epochs)
    base = load_config(args.config) if (args.config or saved is None) else saved
    cfg = apply_overrides(base, ov)
    model_kwargs = _model_kwargs(args)
    ds = _load_data(args, cfg.train.seed, cfg)
    for warning in check_trainable(ds):
        print(f"rsgn: warning: {warning}", file=sys.stderr)
    m = train(
        cfg,
        ds,
        args.out,
        backend=args.backend,
        preset=args.preset,
        resume=args.resume,
        log=None if args.quiet else sys.stderr,
        model=args.model,
        model_kwargs=model_kwargs,
        backend_args=args.backend_args,
        nproc=args.nproc,
    )
    summary = {k: m[k] for k in ("accuracy", "params", "active_fraction", "seconds_per_step")}
    if m["model"] != "rsgn":
        summary = {"model": m["model"], **summary}
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: one summary, from rank 0
        print(json.dumps({"out": str(args.out), **summary}))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rsgn.backends.registry import default_name, get_backend, make_options
    from rsgn.checkpoint import atomic_write_json, load_model
    from rsgn.data import check_features
    from rsgn.evaluation import evaluate

    if args.batch_size <= 0:
        raise RsgnError(f"--batch-size must be positive, got {args.batch_size}")
    if args.repeats < 1:
        raise RsgnError(f"--repeats must be >= 1, got {args.repeats}")
    if args.limit is not None and args.limit <= 0:
        raise RsgnError(f"--limit must be positive, got {args.limit}")
    if args.out and Path(args.out).is_dir():
        raise RsgnError(f"--out {args.out} is a folder; give a file name for the JSON report")
    model, cfg, _ = load_model(args.ckpt)
    ds = _load_data(args, cfg.train.seed, cfg, n_classes=model.n_classes)
    check_features(ds, model.d_in)
    if ds.n_classes != model.n_classes:
        raise RsgnError(f"task has {ds.n_classes} classes but the model has {model.n_classes}")
    x, y = ds.x_val[: args.limit], ds.y_val[: args.limit]
    if getattr(model, "model_name", None):  # a baseline: plain torch (a preset is refused)
        if args.backend_args:
            raise RsgnError("--backend-arg applies to the RSGN; baselines run on plain torch")
        kw = {"backend": args.backend, "preset": args.preset}
    else:
        name = args.backend or default_name()
        opts = make_options(name, preset=args.preset, items=args.backend_args)
        kw = {"backend": get_backend(name, options=opts)}
    lengths = None if ds.len_val is None else ds.len_val[: args.limit]
    res = evaluate(
        model,
        x,
        y,
        batch_size=args.batch_size,
        show_progress=True,
        lengths=lengths,
        repeats=args.repeats,
        **kw,
    ).to_dict()
    res = {"ckpt": str(args.ckpt), "data": ds.name, **res}
    if args.out:
        atomic_write_json(args.out, res)
    print(json.dumps(res, indent=2))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rsgn.comparison import failed_rows, run_compare, summary_text

    report, files = run_compare(
        args.ckpt,
        task=args.task,
        data=args.data,
        backends=args.backends,
        presets=args.presets,
        backend_args=args.backend_args,
        out=args.out,
        limit=args.limit,
        batch_size=args.batch_size,
        baselines=args.baselines,
        show_progress=True,
    )
    print(summary_text(report))
    print(f"report: {Path(files['json']).parent}")
    failed = failed_rows(report)
    if failed:
        print(f"rsgn: error: {len(failed)} row(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rsgn.sweep import run_sweep_file

    summary = run_sweep_file(
        args.config, executor=args.executor, workers=args.workers, out=args.out, log=sys.stderr
    )
    print(json.dumps(summary))
    return 0


def cmd_backends(_args: argparse.Namespace) -> int:
    from rsgn.backends import availability, default_name

    dflt = default_name()
    for name, ok, why, summary, presets in availability():
        mark = "*" if name == dflt else " "
        state = "available" if ok else f"unavailable ({why})"
        print(f"{mark} {name:14s} {state}")
        if summary:
            print(f"    {summary}")
        if presets:
            print(f"    presets: {', '.join(presets)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rsgn.config import apply_overrides, load_config
    from rsgn.data import make_task
    from rsgn.evaluation import evaluate
    from rsgn.training import train

    # the paper's training (epochs only: no selection split, step floor or augmentation), so the
    # demo trains the epochs it announces; `rsgn train` defaults to issue 18's training
    cfg = apply_overrides(
        load_config("paper-training"),
        [f"train.epochs={args.epochs}", f"data.n_samples={args.samples}", f"train.lr={args.lr}"],
    )
    ds = make_task(args.task, cfg.data, seed=cfg.train.seed)
    print(
        f"rsgn demo: {args.task} task, {len(ds.y_train)} train / {len(ds.y_val)} val samples, "
        f"{cfg.model.n_nodes} nodes, target active fraction {cfg.model.target_active:.0%}, "
        f"{args.epochs} epochs (paper-training: the epochs only, no selection split)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "demo"
        t0 = time.perf_counter()
        m = train(cfg, ds, out, log=sys.stdout, backend_args=args.backend_args)
        wall = time.perf_counter() - t0
        from rsgn.checkpoint import load_model

        model, _, _ = load_model(out)
        res = evaluate(model, ds.x_val, ds.y_val, "torch")
    chance = 1.0 / ds.n_classes
    print(
        f"validation accuracy {res.accuracy:.3f} (chance {chance:.3f}), "
        f"active fraction {res.active_fraction:.2%} of nodes per step, "
        f"{m['params']} parameters"
    )
    print(
        f"train time {wall:.1f} s ({m['seconds_per_step'] * 1e3:.1f} ms per step), "
        f"eval latency {res.report.latency.value * 1e3:.3f} ms per sample, "
        f"modelled energy {res.report.energy_per_inference.value * 1e6:.2f} uJ per inference"
    )
    return 0


INTERRUPTED = {
    "train": " (the last completed epoch is saved; continue it with --resume)",
    "demo": " (nothing kept unless --out was given)",
    "sweep": " (finished units are cached; run the same command again to continue)",
    "compare": " (no report written; earlier reports are untouched)",
    "eval": " (nothing written)",
}
"""What Ctrl-C leaves behind, per command."""


def main(argv: list[str] | None = None) -> int:
    from rsgn.malloc_tuning import tune_malloc

    args = _parser().parse_args(argv)
    tune_malloc()
    cmds = {
        "train": cmd_train,
        "eval": cmd_eval,
        "compare": cmd_compare,
        "sweep": cmd_sweep,
        "backends": cmd_backends,
        "demo": cmd_demo,
    }
    try:
        return cmds[args.cmd](args)
    except RsgnError as exc:
        print(f"rsgn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rsgn: interrupted{INTERRUPTED.get(args.cmd, '')}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
