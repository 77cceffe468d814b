"""``rsgn sweep``: grid or random sweeps of training configs and backend evaluations, cached.

A sweep file (TOML) has these tables; any other key is an error naming it:

.. code-block:: toml

    [sweep]
    task = "hierarchical"     # or: data = "my.npz" (relative to this file)
    mode = "grid"             # grid | random
    samples = 8               # random: number of draws
    seed = 0                  # random: seed of the draws
    out = "runs/sweep"        # optional; --out wins

    [base.model]              # fixed config values, as in a run config ([base.train], [base.data])
    n_nodes = 64

    [grid]                    # mode grid: config key -> list of values (the cross product runs)
    "model.n_nodes" = [64, 128]
    "train.lr" = [1e-3, 3e-3]

    [random]                  # mode random: key -> list (uniform choice) or {low, high, log}
    "train.lr" = { low = 1e-4, high = 1e-2, log = true }

    [eval]                    # optional: evaluate every trained config on backends x presets
    backends = ["torch", "optical", "neuromorphic"]
    presets = { optical = ["ideal", "bench"] }             # default: the backend's default
    options = { neuromorphic = { mode = ["float", "fixed"] } }   # backend constructor args
    batch_size = 64
    limit = 200               # first N validation samples

Every *unit* (train one config; evaluate one trained config on one backend + preset + options)
is content-addressed: its id is the SHA-256 of its full spec (config, data, backend, preset,
options, the id of the training it evaluates, the rsgn version). A unit's folder
``OUT/units/<kind>-<id>/`` gets ``result.json`` last, atomically, so an interrupted sweep
resumes where it stopped: finished units are read back, a half-finished training resumes from
its last epoch. Executors: ``local`` (a process pool of ``--workers`` processes; ``--workers
1`` runs the units in this process) and ``ray`` (one Ray task per unit). Results:
``OUT/results.csv`` (long form: one row per unit and metric), ``OUT/sweep.png`` and
``OUT/summary.json``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import random
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import rsgn
from rsgn.errors import RsgnError
from rsgn.progress import Bar

SWEEP_KEYS = ("task", "data", "mode", "samples", "seed", "out")
TOP_KEYS = ("sweep", "base", "grid", "random", "eval")
EVAL_KEYS = ("backends", "presets", "options", "batch_size", "limit")
TRAIN_METRICS = ("accuracy", "val_loss", "active_fraction", "params", "seconds_per_step")
EVAL_METRICS = (
    "accuracy",
    "loss",
    "active_fraction",
    "energy_j_per_inference",
    "latency_s_per_inference",
)


@dataclass
class Unit:
    """One cached piece of work: ``kind`` train or eval, its spec and the axis values."""

    kind: str
    spec: dict[str, Any]
    params: dict[str, Any]

    @property
    def id(self) -> str:
        blob = json.dumps(self.spec, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.id}"


@dataclass
class SweepSpec:
    path: str
    data: dict[str, Any]
    mode: str
    configs: list[tuple[dict[str, Any], dict[str, Any]]]
    """(full run config dict, the swept axis values) per training."""
    evals: list[dict[str, Any]] = field(default_factory=list)
    """(backend, preset, options) combinations, each run on every trained config."""
    batch_size: int = 64
    limit: int | None = None
    out: str | None = None


# ------------------------------------------------------------------------------- parsing
def _err(where: str, key: str, msg: str) -> RsgnError:
    return RsgnError(f"{where}: '{key}' {msg}")


def _config_types() -> dict[str, str]:
    from rsgn.config import RunConfig

    cfg = RunConfig()
    return {
        f"{sec}.{f.name}": str(f.type)
        for sec in ("model", "train", "data")
        for f in fields(getattr(cfg, sec))
    }


def _check_config_key(where: str, table: str, key: str, types: dict[str, str]) -> None:
    if key not in types:
        raise _err(
            where,
            f"{table}.{key}",
            "is not a config key (use section.field, e.g. model.n_nodes; see rsgn/config.py)",
        )


def _build_config(base: dict[str, dict[str, Any]], point: dict[str, Any], where: str):
    from rsgn.config import RunConfig

    merged = {s: dict(v) for s, v in base.items()}
    for key, value in point.items():
        sec, name = key.split(".", 1)
        merged.setdefault(sec, {})[name] = value
    try:
        return RunConfig.from_dict(merged, where=where)
    except RsgnError as exc:
        keys = ", ".join(f"{k}={v!r}" for k, v in point.items())
        raise RsgnError(f"{exc}" + (f" (at {keys})" if keys else "")) from None


def _draw(rng: random.Random, key: str, dist: Any, ftype: str, where: str) -> Any:
    if isinstance(dist, list):
        return rng.choice(dist)
    lo, hi, log = dist["low"], dist["high"], dist.get("log", False)
    if "int" in ftype and "float" not in ftype:
        if log:
            return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
        return rng.randint(int(lo), int(hi))
    if log:
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.uniform(lo, hi)


def _check_dist(where: str, key: str, dist: Any) -> None:
    if isinstance(dist, list):
        if not dist:
            raise _err(where, f"random.{key}", "is an empty list")
        return
    if not isinstance(dist, dict):
        raise _err(where, f"random.{key}", "must be a list of values or {low, high, log}")
    extra = set(dist) - {"low", "high", "log"}
    if extra:
        raise _err(where, f"random.{key}.{sorted(extra)[0]}", "is not one of low, high, log")
    for k in ("low", "high"):
        v = dist.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _err(where, f"random.{key}.{k}", "must be a finite number")
    if dist["low"] > dist["high"]:
        raise _err(where, f"random.{key}", "has low > high")
    if not isinstance(dist.get("log", False), bool):
        raise _err(where, f"random.{key}.log", "must be true or false")
    if dist.get("log") and dist["low"] <= 0:
        raise _err(where, f"random.{key}.low", "must be positive for a log-uniform draw")


def _backend_params(name: str) -> set[str]:
    from rsgn.backends.registry import backend_class

    return set(backend_class(name).Options.field_types()) - {"preset"}


def _parse_eval(where: str, ev: Any) -> tuple[list[dict[str, Any]], int, int | None]:
    from rsgn.backends.registry import names

    if not isinstance(ev, dict):
        raise _err(where, "eval", "must be a table")
    for k in ev:
        if k not in EVAL_KEYS:
            raise _err(where, f"eval.{k}", f"is not a sweep key (known: {', '.join(EVAL_KEYS)})")
    backends = ev.get("backends")
    if (
        not isinstance(backends, list)
        or not backends
        or not all(isinstance(b, str) for b in backends)
    ):
        raise _err(where, "eval.backends", "must be a non-empty list of backend names")
    for b in backends:
        if b not in names():
            raise _err(
                where, "eval.backends", f"names unknown backend {b!r} (known: {', '.join(names())})"
            )
    presets = ev.get("presets", {})
    options = ev.get("options", {})
    for table, val in (("presets", presets), ("options", options)):
        if not isinstance(val, dict):
            raise _err(where, f"eval.{table}", "must be a table keyed by backend")
        for b in val:
            if b not in backends:
                raise _err(where, f"eval.{table}.{b}", "is not in eval.backends")
    for b, ps in presets.items():
        if not isinstance(ps, list) or not ps or not all(isinstance(p, str) for p in ps):
            raise _err(where, f"eval.presets.{b}", "must be a non-empty list of preset names")
    for b, opts in options.items():
        if not isinstance(opts, dict):
            raise _err(where, f"eval.options.{b}", "must be a table of option -> list")
        known = _backend_params(b)
        for k, vals in opts.items():
            if k not in known:
                raise _err(
                    where,
                    f"eval.options.{b}.{k}",
                    f"is not an option of backend {b!r} (known: {', '.join(sorted(known))})",
                )
            if not isinstance(vals, list) or not vals:
                raise _err(where, f"eval.options.{b}.{k}", "must be a non-empty list")
    bs = ev.get("batch_size", 64)
    if isinstance(bs, bool) or not isinstance(bs, int) or bs <= 0:
        raise _err(where, "eval.batch_size", f"must be a positive integer, got {bs!r}")
    limit = ev.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise _err(where, "eval.limit", f"must be a positive integer, got {limit!r}")
    combos: list[dict[str, Any]] = []
    for b in backends:
        opts = options.get(b, {})
        keys = sorted(opts)
        for preset in presets.get(b, [None]):
            for vals in itertools.product(*(opts[k] for k in keys)):
                combos.append(
                    {"backend": b, "preset": preset, "options": dict(zip(keys, vals, strict=True))}
                )
    return combos, bs, limit


def parse_sweep(
    doc: dict[str, Any], where: str = "sweep", base_dir: Path | None = None
) -> SweepSpec:
    """Validate a sweep document; every error names the offending key."""
    for k in doc:
        if k not in TOP_KEYS:
            raise _err(where, k, f"is not a sweep table (known: {', '.join(TOP_KEYS)})")
    sw = doc.get("sweep", {})
    if not isinstance(sw, dict):
        raise _err(where, "sweep", "must be a table")
    for k in sw:
        if k not in SWEEP_KEYS:
            raise _err(where, f"sweep.{k}", f"is not a sweep key (known: {', '.join(SWEEP_KEYS)})")
    task, data = sw.get("task"), sw.get("data")
    if (task is None) == (data is None):
        raise _err(where, "sweep.task", "or sweep.data must be given (exactly one)")
    if task is not None:
        from rsgn.data import TASKS

        if task not in TASKS:
            known = ", ".join(TASKS)
            raise _err(where, "sweep.task", f"is {task!r}, not a built-in task ({known})")
        data_spec: dict[str, Any] = {"task": task}
    else:
        if not isinstance(data, str):
            raise _err(where, "sweep.data", "must be a path to an .npz file")
        p = Path(data)
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        if not p.is_file():
            raise _err(where, "sweep.data", f"file not found: {p}")
        data_spec = {"npz": str(p.resolve()), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    mode = sw.get("mode", "grid")
    if mode not in ("grid", "random"):
        raise _err(where, "sweep.mode", f"is {mode!r}: choose grid or random")
    out = sw.get("out")
    if out is not None and not isinstance(out, str):
        raise _err(where, "sweep.out", "must be a path")
    if out is not None and base_dir is not None and not Path(out).is_absolute():
        out = str(base_dir / out)

    types = _config_types()
    base = doc.get("base", {})
    if not isinstance(base, dict):
        raise _err(where, "base", "must be a table of [base.model], [base.train], [base.data]")
    for sec, vals in base.items():
        if sec not in ("model", "train", "data") or not isinstance(vals, dict):
            raise _err(where, f"base.{sec}", "is not a config section (model, train, data)")
        for k in vals:
            _check_config_key(where, "base", f"{sec}.{k}", types)
    _build_config(base, {}, where)

    other = "random" if mode == "grid" else "grid"
    if other in doc:
        raise _err(where, other, f"does not apply to sweep.mode = {mode!r}")
    axes = doc.get(mode, {})
    if not isinstance(axes, dict):
        raise _err(where, mode, "must be a table of config key -> values")
    for key, vals in axes.items():
        _check_config_key(where, mode, key, types)
        if mode == "grid" and (not isinstance(vals, list) or not vals):
            raise _err(where, f"grid.{key}", "must be a non-empty list of values")
        if mode == "random":
            _check_dist(where, key, vals)
    points: list[dict[str, Any]] = []
    if mode == "grid":
        keys = list(axes)
        points = [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())
        ]
    else:
        n = sw.get("samples")
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise _err(where, "sweep.samples", f"must be a positive integer, got {n!r}")
        seed = sw.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise _err(where, "sweep.seed", f"must be an integer, got {seed!r}")
        rng = random.Random(seed)
        points = [{k: _draw(rng, k, d, types[k], where) for k, d in axes.items()} for _ in range(n)]
    configs = []
    for pt in points:
        for key, value in pt.items():  # a bad value names its grid key
            try:
                _build_config(base, {key: value}, where)
            except RsgnError as exc:
                raise _err(where, f"{mode}.{key}", f"value {value!r} is rejected: {exc}") from None
        configs.append((_build_config(base, pt, where).to_dict(), pt))
    evals, bs, limit = ([], 64, None)
    if "eval" in doc:
        evals, bs, limit = _parse_eval(where, doc["eval"])
    return SweepSpec(where, data_spec, mode, configs, evals, bs, limit, out)


def load_sweep(path: str | Path) -> SweepSpec:
    p = Path(path)
    if not p.is_file():
        raise RsgnError(f"sweep file not found: {p}")
    try:
        doc = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RsgnError(f"sweep file {p} is not valid TOML: {exc}") from None
    return parse_sweep(doc, where=str(p), base_dir=p.parent.resolve())


# -------------------------------------------------------------------------------- units
def plan_units(spec: SweepSpec) -> tuple[list[Unit], list[Unit]]:
    """The training units and the evaluation units (deduplicated by id, in sweep order)."""
    version = rsgn.__version__
    trains: dict[str, Unit] = {}
    evals: dict[str, Unit] = {}
    for cfg, pt in spec.configs:
        tu = Unit(
            "train",
            {"kind": "train", "config": cfg, "data": spec.data, "rsgn": version},
            dict(pt),
        )
        trains.setdefault(tu.id, tu)
        for ev in spec.evals:
            eu = Unit(
                "eval",
                {
                    "kind": "eval",
                    "train": tu.id,
                    "data": spec.data,
                    "backend": ev["backend"],
                    "preset": ev["preset"],
                    "options": ev["options"],
                    "batch_size": spec.batch_size,
                    "limit": spec.limit,
                    "rsgn": version,
                },
                {
                    **pt,
                    "backend": ev["backend"],
                    "preset": ev["preset"],
                    **{f"option.{k}": v for k, v in ev["options"].items()},
                },
            )
            evals.setdefault(eu.id, eu)
    return list(trains.values()), list(evals.values())


def check_targets(trains: list[Unit], evals: list[Unit]) -> None:
    """Refuse, before any unit runs, an evaluation whose target, preset or options cannot run
    its training's model (``Backend.check`` on an untrained model of that config)."""
    if not evals:
        return
    from rsgn.backends.registry import get_backend
    from rsgn.config import RunConfig
    from rsgn.model import RSGN

    by_id = {u.id: u for u in trains}
    specs: dict[str, Any] = {}
    for eu in evals:
        tu = by_id[eu.spec["train"]]
        if tu.id not in specs:
            cfg = RunConfig.from_dict(tu.spec["config"], where="sweep unit")
            ds = _dataset(tu.spec["data"], cfg)
            specs[tu.id] = RSGN(ds.d_in, ds.n_classes, cfg.model).export()
        be = get_backend(eu.spec["backend"], preset=eu.spec["preset"], **eu.spec["options"])
        try:
            be.check(specs[tu.id])
        except RsgnError as exc:
            raise RsgnError(f"sweep eval {eu.params}: {exc}") from None


def unit_dir(out: str | Path, name: str) -> Path:
    return Path(out) / "units" / name


def _dataset(data: dict[str, Any], cfg):
    from rsgn.data import load_data

    return load_data(cfg.data, task=data.get("task"), npz=data.get("npz"), seed=cfg.train.seed)


def _metric(v: Any) -> Any:
    if isinstance(v, (int, float, str)) or v is None:
        return v
    return json.dumps(v)


def execute_unit(kind: str, spec: dict[str, Any], params: dict[str, Any], out: str) -> dict:
    """Run one unit (in whatever process) and write its ``result.json``; errors come back as
    ``{"error": ...}`` so one bad unit does not stop the sweep."""
    from rsgn.checkpoint import atomic_write_json

    unit = Unit(kind, spec, params)
    d = unit_dir(out, unit.name)
    t0 = time.perf_counter()
    try:
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_json(d / "spec.json", spec)
        metrics = _run_train(spec, d) if kind == "train" else _run_eval(spec, out)
    except Exception as exc:  # recorded and reported; the unit stays unfinished
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"unit": unit.name, "error": f"{type(exc).__name__}: {msg}"}
    result = {
        "unit": unit.name,
        "kind": kind,
        "params": params,
        "metrics": metrics,
        "seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
    }
    atomic_write_json(d / "result.json", result)
    return result


def _run_train(spec: dict[str, Any], d: Path) -> dict[str, Any]:
    from rsgn.config import RunConfig
    from rsgn.training import train

    cfg = RunConfig.from_dict(spec["config"], where="sweep unit")
    ds = _dataset(spec["data"], cfg)
    m = train(cfg, ds, d, resume=True, log=None)
    return {k: _metric(m[k]) for k in TRAIN_METRICS}


def _run_eval(spec: dict[str, Any], out: str) -> dict[str, Any]:
    from rsgn.backends.registry import get_backend
    from rsgn.checkpoint import load_model
    from rsgn.evaluation import evaluate

    tdir = unit_dir(out, f"train-{spec['train']}")
    if not (tdir / "result.json").is_file():
        raise RsgnError(f"its training unit train-{spec['train']} has not finished")
    model, cfg, _ = load_model(tdir)
    ds = _dataset(spec["data"], cfg)
    x, y = ds.x_val, ds.y_val
    if spec["limit"] is not None:
        x, y = x[: spec["limit"]], y[: spec["limit"]]
    be = get_backend(spec["backend"], preset=spec["preset"], **spec["options"])
    ev = evaluate(model, x, y, be, batch_size=spec["batch_size"])
    res = {
        "accuracy": ev.accuracy,
        "loss": ev.loss,
        "active_fraction": ev.active_fraction,
        "energy_j_per_inference": _typed(ev.report.energy_per_inference),
        "latency_s_per_inference": _typed(ev.report.latency),
        "preset_used": ev.report.preset,
    }
    return {k: _metric(v) for k, v in res.items()}


def _typed(m: Any) -> float | str:
    """A typed metric as a sweep cell: its value, or 'n/a: reason'."""
    from rsgn.backends.base import NotAvailable

    return f"n/a: {m.reason}" if isinstance(m, NotAvailable) else m.value


def _ray_unit(kind: str, spec: dict[str, Any], params: dict[str, Any], out: str) -> dict:
    return execute_unit(kind, spec, params, out)


def read_result(out: str | Path, unit: Unit) -> dict[str, Any] | None:
    p = unit_dir(out, unit.name) / "result.json"
    if not p.is_file():
        return None
    try:
        res = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return res if isinstance(res, dict) and "metrics" in res else None


# ---------------------------------------------------------------------------- executors
Hook = Callable[[Unit, dict[str, Any]], None]


def _run_local(units: list[Unit], out: str, workers: int, hook: Hook) -> None:
    if workers <= 1 or len(units) <= 1:
        for u in units:
            hook(u, execute_unit(u.kind, u.spec, u.params, out))
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    from rsgn.workers import watched_pool

    with watched_pool(workers) as pool:
        futs = {pool.submit(execute_unit, u.kind, u.spec, u.params, out): u for u in units}
        try:
            pending = set(futs)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    u = futs[f]
                    try:
                        res = f.result()
                    except Exception as exc:  # a worker died (killed, out of memory)
                        res = {"unit": u.name, "error": f"{type(exc).__name__}: {exc}"}
                    hook(u, res)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RsgnError(
            "the ray executor needs Ray, which is not installed: pip install 'rsgn[ray]'"
        ) from None
    return ray


def _run_ray(units: list[Unit], out: str, workers: int | None, hook: Hook) -> None:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if workers:
            kw["num_cpus"] = workers
        ray.init(**kw)
        started = True
    try:
        task = ray.remote(_ray_unit)
        refs = {task.options(num_cpus=1).remote(u.kind, u.spec, u.params, out): u for u in units}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for r in done:
                    u = refs.pop(r)
                    try:
                        res = ray.get(r)
                    except Exception as exc:  # the task or its worker failed
                        cause = getattr(exc, "cause", None) or exc
                        res = {"unit": u.name, "error": f"{type(cause).__name__}: {cause}"}
                    hook(u, res)
        except BaseException:
            for r in refs:
                ray.cancel(r)
            raise
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------------------ driving
def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    log: TextIO | None = None,
    on_unit_done: Hook | None = None,
) -> dict[str, Any]:
    """Run the units of ``spec`` not already finished under ``out``; write the results table,
    plot and summary. ``on_unit_done(unit, result)`` runs after each unit that ran (a hook
    for progress, or for injecting a fault: an exception from it stops the sweep there)."""
    if executor not in ("local", "ray"):
        raise RsgnError(f"--executor must be local or ray, got {executor!r}")
    if workers is not None and workers <= 0:
        raise RsgnError(f"--workers must be positive, got {workers}")
    if executor == "ray":
        _import_ray()
    out = str(Path(out).resolve())
    Path(out).mkdir(parents=True, exist_ok=True)
    trains, evals = plan_units(spec)
    check_targets(trains, evals)  # a target that cannot run a model: refused before training
    ran: list[str] = []
    cached: list[str] = []
    failed: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    n_workers = workers or (os.cpu_count() or 1)

    def hook(u: Unit, res: dict[str, Any]) -> None:
        if "error" in res:
            failed[u.name] = res["error"]
            if log:
                print(f"sweep: {u.name} failed: {res['error']}", file=log, flush=True)
        else:
            ran.append(u.name)
            results[u.name] = res
            if log:
                print(
                    f"sweep: {u.name} done in {res['seconds']:.1f}s  {u.params}",
                    file=log,
                    flush=True,
                )
        if on_unit_done is not None:
            on_unit_done(u, res)

    for phase in (trains, evals):
        todo = []
        for u in phase:
            if u.kind == "eval" and f"train-{u.spec['train']}" in failed:
                failed[u.name] = f"its training unit train-{u.spec['train']} failed"
                continue
            res = read_result(out, u)
            if res is None:
                todo.append(u)
            else:
                cached.append(u.name)
                results[u.name] = res
        if log and phase:
            print(
                f"sweep: {len(phase)} {phase[0].kind} units, {len(phase) - len(todo)} cached, "
                f"{len(todo)} to run",
                file=log,
                flush=True,
            )
        if not todo:
            continue
        with Bar(len(todo), f"sweep {todo[0].kind}", show=log is not None) as bar:

            def counted(u: Unit, res: dict[str, Any], bar: Bar = bar) -> None:
                hook(u, res)
                bar.update()

            if executor == "local":
                _run_local(todo, out, min(n_workers, len(todo)), counted)
            else:
                _run_ray(todo, out, workers, counted)

    units = trains + evals
    csv_path = Path(out) / "results.csv"
    rows = _long_rows(units, results, spec)
    _write_csv(csv_path, rows)
    plot = _plot(Path(out) / "sweep.png", units, results)
    summary = {
        "sweep": spec.path,
        "out": out,
        "executor": executor,
        "units": len(units),
        "ran": ran,
        "cached": cached,
        "failed": failed,
        "results": str(csv_path),
        "plot": plot,
        "rsgn": rsgn.__version__,
    }
    from rsgn.checkpoint import atomic_write_json

    atomic_write_json(Path(out) / "summary.json", summary)
    return summary


def _long_rows(units: list[Unit], results: dict[str, dict], spec: SweepSpec) -> list[dict]:
    axes = list(dict.fromkeys(k for _, pt in spec.configs for k in pt))
    opt_keys = sorted({k for u in units for k in u.params if k.startswith("option.")})
    rows = []
    for u in units:
        res = results.get(u.name)
        if res is None:
            continue
        base = {
            "unit": u.name,
            "kind": u.kind,
            "train_unit": u.name if u.kind == "train" else f"train-{u.spec['train']}",
            **{k: u.params.get(k, "") for k in axes},
            "backend": u.spec.get("backend", "torch" if u.kind == "train" else ""),
            "preset": u.spec.get("preset") or "",
            **{k: u.params.get(k, "") for k in opt_keys},
        }
        for m, v in res["metrics"].items():
            rows.append({**base, "metric": m, "value": v})
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    from rsgn.checkpoint import atomic_write_bytes

    buf = io.StringIO()
    cols = list(dict.fromkeys(k for r in rows for k in r)) or ["unit", "kind", "metric", "value"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", restval="")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_bytes(path, buf.getvalue().encode())


def _series(
    items: list[tuple[Unit, dict]], x_key: str, metric: str, extra: tuple[str, ...]
) -> dict[str, list[tuple[Any, float]]]:
    """(x, metric) points grouped by the other swept values and ``extra`` keys of each unit."""
    out: dict[str, list[tuple[Any, float]]] = {}
    for u, r in items:
        v = r["metrics"].get(metric)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        rest = [f"{k}={u.params[k]}" for k in (*u.params, *extra) if k != x_key and k in u.params]
        out.setdefault(", ".join(rest) or "all", []).append((u.params.get(x_key), float(v)))
    return out


def _draw_series(ax, series: dict[str, list[tuple[Any, float]]], x_key: str) -> None:
    numeric = all(isinstance(x, (int, float)) for xs in series.values() for x, _ in xs)
    cats = sorted({str(x) for xs in series.values() for x, _ in xs})
    for label, pts in series.items():
        pts = sorted(pts, key=lambda p: p[0] if numeric else cats.index(str(p[0])))
        xs = [p[0] if numeric else cats.index(str(p[0])) for p in pts]
        ax.plot(xs, [p[1] for p in pts], marker="o", ms=4, lw=1, label=label)
    if numeric:
        vals = [x for xs in series.values() for x, _ in xs]
        if vals and min(vals) > 0 and max(vals) / min(vals) >= 20:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(cats)), cats, fontsize=7, rotation=20)
    ax.set_xlabel(x_key)
    ax.grid(alpha=0.3)


def _plot(path: Path, units: list[Unit], results: dict[str, dict]) -> str:
    """Accuracy (every training's validation accuracy, every evaluation's accuracy) and
    modelled energy per inference against the first swept parameter, one line per value of
    the other swept parameters and per target:preset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rsgn.checkpoint import atomic_write_bytes

    trains = [(u, results[u.name]) for u in units if u.kind == "train" and u.name in results]
    evals = [(u, results[u.name]) for u in units if u.kind == "eval" and u.name in results]
    swept = list(dict.fromkeys(k for u, _ in trains for k in u.params))
    x_key = swept[0] if swept else "unit"
    if not swept:  # nothing swept: one point per unit
        for i, (u, _) in enumerate(trains + evals):
            u.params.setdefault("unit", i)
    target = ("backend", "preset")
    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(11 if evals else 6, 4.2))
    axes = np.atleast_1d(axes)
    acc = _series(trains, x_key, "accuracy", ())
    acc_eval = _series(evals, x_key, "accuracy", target)
    _draw_series(axes[0], {f"train: {k}": v for k, v in acc.items()}, x_key)
    if acc_eval:
        _draw_series(axes[0], {f"eval: {k}": v for k, v in acc_eval.items()}, x_key)
    axes[0].set_ylabel("accuracy")
    axes[0].set_title("Accuracy")
    axes[0].legend(fontsize=6)
    if evals:
        energy = _series(evals, x_key, "energy_j_per_inference", target)
        if energy:
            _draw_series(axes[1], energy, x_key)
            axes[1].set_yscale("log")
            axes[1].legend(fontsize=6)
        axes[1].set_ylabel("modelled energy per inference (J)")
        axes[1].set_title("Energy per inference")
    fig.suptitle(f"Sweep over {', '.join(swept) or 'units'}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return str(path)


def run_sweep_file(
    path: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    out: str | Path | None = None,
    log: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """The ``rsgn sweep`` command: returns counts and paths (the full lists are in
    ``OUT/summary.json``)."""
    if executor not in ("local", "ray"):
        raise RsgnError(f"--executor must be local or ray, got {executor!r}")
    if executor == "ray":
        _import_ray()
    spec = load_sweep(path)
    out = out or spec.out
    if out is None:
        raise RsgnError("no output folder: pass --out or set [sweep] out in the sweep file")
    s = run_sweep(spec, out, executor=executor, workers=workers, log=log)
    if s["failed"]:
        first = next(iter(s["failed"].items()))
        raise RsgnError(
            f"{len(s['failed'])} of {s['units']} units failed (first: {first[0]}: {first[1]}); "
            f"finished units are cached in {s['out']}, rerun to retry"
        )
    return {
        "out": s["out"],
        "units": s["units"],
        "ran": len(s["ran"]),
        "cached": len(s["cached"]),
        "results": s["results"],
        "plot": s["plot"],
    }
