"""``rsgn compare``: one checkpoint, the same inputs, several targets, one report.

Each row is a target with a preset (``torch``, ``optical:ideal``, ``optical:bench``,
``neuromorphic:loihi2_est``...), run through :func:`rsgn.evaluation.evaluate` on the same
validation samples with the same torch seed. The torch target is the reference that prediction
agreement and logit errors are measured against (here, and only here); it runs even when not
listed, and it runs the definition (``compile=eager``, :mod:`rsgn.ops`) unless a ``compile``
option is given for it. The report reads every figure from the targets' typed reports and
capabilities:

- accuracy, prediction agreement and max / mean absolute logit error vs torch;
- latency per inference (measured on a device, or modelled), its p50 / p99 where the target
  gives a distribution, and the measured wall time of the run on this machine;
- modelled energy per inference with its breakdown by op, counted events per inference, and
  the measured active fraction.

A figure a target cannot give is ``"n/a: <reason>"``, never 0. A target that is not available
here, or runs here only emulated (Triton under its CPU interpreter) without being listed, is a
``skipped`` row with the reason; a target that cannot run the model is refused before anything
runs; a row that fails while running is ``failed: <error>`` and the command exits non-zero.

Files (in a new folder, never over an earlier report): ``compare.json`` (rows + each target's
whole-run report), ``compare.csv`` and ``compare.md`` (the table), ``batches.json`` (per-batch
details), ``energy_breakdown.png``, ``latency.png`` and ``pareto.png``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsgn.backends.base import Measured, Modelled, NotAvailable
from rsgn.checkpoint import atomic_write_bytes, atomic_write_json, versions
from rsgn.errors import RsgnError

REFERENCE = "torch"
DEFAULT_ROWS = ("torch", "triton", "optical", "neuromorphic")

COLUMNS: dict[str, str] = {
    "row": "target:preset",
    "target": "target name",
    "preset": "the target's preset",
    "status": "ok, skipped: <reason> or failed: <error>",
    "n_samples": "validation samples run",
    "accuracy": "fraction of samples classified correctly",
    "agreement": "fraction of samples whose predicted class equals the torch reference's",
    "max_abs_logit_err": "max |logit - torch logit| over samples and classes",
    "mean_abs_logit_err": "mean |logit - torch logit| over samples and classes",
    "latency_s_per_inference": "latency per inference (s): measured on the device or modelled",
    "latency_kind": "measured (how) or modelled (which model)",
    "latency_p50_s": "median latency per inference (s), where the target gives a distribution",
    "latency_p99_s": "99th-percentile latency per inference (s), where a distribution is given",
    "wall_time_s": "measured wall time of the whole run on this machine (s)",
    "energy_j_per_inference": "modelled energy per inference (J)",
    "energy_kind": "the energy model",
    "energy_measured_j_per_inference": "measured energy per inference (J) from a power counter",
    "energy_breakdown_j_per_inference": "modelled energy per inference by op (J)",
    "events_per_inference": "counted events per inference, all kinds summed",
    "active_fraction": "mean fraction of nodes active per propagation step (measured)",
}

NUMERIC = (
    "accuracy",
    "agreement",
    "max_abs_logit_err",
    "mean_abs_logit_err",
    "latency_s_per_inference",
    "latency_p50_s",
    "latency_p99_s",
    "wall_time_s",
    "energy_j_per_inference",
    "events_per_inference",
    "active_fraction",
)


@dataclass(frozen=True)
class RowSpec:
    """One requested row: a target and (optionally) its preset."""

    target: str
    preset: str | None = None

    @property
    def label(self) -> str:
        return self.target if self.preset is None else f"{self.target}:{self.preset}"


def parse_rows(text: str | None, presets: list[str] | None = None) -> tuple[list[RowSpec], bool]:
    """Rows from ``target[:preset],...`` (default: torch, triton, optical, neuromorphic with
    their default presets); ``presets`` (``--preset target=name``, older spelling) sets the
    preset of a target listed without one. Returns (rows, listed explicitly)."""
    from rsgn.backends.registry import backend_class, names

    explicit = text is not None
    parts = [p.strip() for p in (text or ",".join(DEFAULT_ROWS)).split(",") if p.strip()]
    if not parts:
        raise RsgnError("--backends lists no target")
    given: dict[str, str] = {}
    for item in presets or []:
        tgt, sep, name = (s.strip() for s in item.partition("="))
        if not sep or not tgt or not name:
            raise RsgnError(f"--preset expects target=name, got {item!r}")
        given[tgt] = name
    rows: list[RowSpec] = []
    for p in parts:
        tgt, _, preset = (s.strip() for s in p.partition(":"))
        if tgt not in names():
            from rsgn.config import did_you_mean

            raise RsgnError(
                f"unknown target {tgt!r} in --backends{did_you_mean(tgt, names())} "
                f"(known: {', '.join(names())})"
            )
        preset = preset or given.get(tgt) or None
        if preset is not None:
            known = backend_class(tgt).presets()
            if known and preset not in known:
                raise RsgnError(f"unknown preset {preset!r} for {tgt} (known: {', '.join(known)})")
        row = RowSpec(tgt, preset)
        if row not in rows:
            rows.append(row)
    for tgt in given:
        if tgt not in {r.target for r in rows}:
            raise RsgnError(f"--preset {tgt}=...: target {tgt!r} is not in --backends")
    return rows, explicit


def parse_target_args(items: list[str], rows: list[RowSpec]) -> dict[str, list[str]]:
    """``target.KEY=VALUE`` items of ``--backend-arg`` grouped by target (checked later against
    the target's typed options)."""
    grouped: dict[str, list[str]] = {}
    targets = {r.target for r in rows}
    for item in items:
        head, sep, _ = item.partition("=")
        tgt, dot, key = head.partition(".")
        tgt = tgt.strip()
        if not sep or not dot or not tgt or not key.strip():
            raise RsgnError(f"--backend-arg expects TARGET.KEY=VALUE, got {item!r}")
        if tgt not in targets:
            raise RsgnError(f"--backend-arg {item!r}: target {tgt!r} is not in --backends")
        grouped.setdefault(tgt, []).append(item.partition(".")[2])
    return grouped


def _na(reason: str) -> str:
    return reason if reason.startswith("n/a") else f"n/a: {reason}"


def _cell(m: Measured | Modelled | NotAvailable, scale: float = 1.0) -> float | str:
    return _na(m.reason) if isinstance(m, NotAvailable) else m.value * scale


def _kind(m: Measured | Modelled | NotAvailable) -> str:
    if isinstance(m, Measured):
        return f"measured ({m.how})"
    if isinstance(m, Modelled):
        return f"modelled ({m.model})"
    return _na(m.reason)


def _skipped_row(spec: RowSpec, status: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "row": spec.label,
        "target": spec.target,
        "preset": spec.preset,
        "status": status,
        "n_samples": 0,
    }
    why = _na(f"{spec.label} {status}")
    return {c: row.get(c, why) for c in COLUMNS}


def agreement(logits: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Prediction agreement and absolute logit errors of ``logits`` against the reference's."""
    diff = (logits.double() - ref.double()).abs()
    return {
        "agreement": float((logits.argmax(1) == ref.argmax(1)).double().mean()),
        "max_abs_logit_err": float(diff.max()),
        "mean_abs_logit_err": float(diff.mean()),
    }


def _latency_cells(ev) -> dict[str, Any]:
    rep = ev.report
    out: dict[str, Any] = {
        "latency_s_per_inference": _cell(rep.latency),
        "latency_kind": _kind(rep.latency),
        "wall_time_s": rep.wall_time.value,
    }
    dist = rep.latency_per_inference
    if dist and len(dist) == rep.n_samples:
        arr = np.asarray(dist, dtype=np.float64)
        out["latency_p50_s"] = float(np.percentile(arr, 50))
        out["latency_p99_s"] = float(np.percentile(arr, 99))
    else:
        why = ev.capabilities["metrics"].get("latency_distribution", "n/a: no distribution")
        out["latency_p50_s"] = out["latency_p99_s"] = _na(str(why))
    return out


def _energy_cells(ev) -> dict[str, Any]:
    rep = ev.report
    n = max(1, rep.n_samples)
    e = rep.energy_per_inference
    out: dict[str, Any] = {
        "energy_j_per_inference": _cell(e),
        "energy_kind": _kind(e),
        "energy_measured_j_per_inference": _cell(rep.energy_measured, 1.0 / n),
    }
    if rep.ledger is None or isinstance(e, NotAvailable):
        out["energy_breakdown_j_per_inference"] = _cell(e)
        out["events_per_inference"] = _na("no cost ledger")
    else:
        out["energy_breakdown_j_per_inference"] = {
            op: v / n for op, v in rep.ledger.energy_by_op().items()
        }
        out["events_per_inference"] = math.fsum(rep.ledger.totals().values()) / n
    return out


def compare(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    rows: list[RowSpec],
    *,
    target_args: dict[str, list[str]] | None = None,
    explicit: bool = True,
    batch_size: int = 64,
    seed: int = 0,
    baselines: list[torch.nn.Module] | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Run ``model`` on every row's target on the same ``x``; return the report.

    ``baselines``: trained baseline models (Transformer, LSTM...) run on plain torch on the
    same samples and costed on the same electronic model, one row each (agreement n/a: another
    model).

    ``explicit``: the user listed the rows (a target that runs here only emulated runs only
    then). ``target_args``: ``KEY=VALUE`` options per target. Unknown presets or options and
    targets that cannot run the model are RsgnErrors before anything runs; a row that fails
    while running becomes ``failed: <error>``.
    """
    from rsgn.backends.registry import backend_class, get_backend, make_options
    from rsgn.evaluation import evaluate

    if getattr(model, "model_name", None):
        raise RsgnError("compare runs the RSGN on every target; baselines run on torch only")
    spec = model.export()
    target_args = target_args or {}
    order = list(rows)
    notes: list[str] = []
    if not any(r.target == REFERENCE for r in rows):
        order.insert(0, RowSpec(REFERENCE))
        notes.append("torch was not listed; it ran anyway as the reference for agreement")
    else:
        ref_rows = [r for r in order if r.target == REFERENCE]
        order = ref_rows + [r for r in order if r.target != REFERENCE]
    plan: list[tuple[RowSpec, Any, str]] = []
    for r in order:
        cls = backend_class(r.target)
        ok, why = cls.available()
        if ok and not explicit:
            emulated = cls.emulated()
            if emulated:
                ok, why = False, f"{emulated}; runs only when listed in --backends"
        if not ok:
            plan.append((r, None, f"skipped: {why}"))
            continue
        items = list(target_args.get(r.target) or [])
        if r.target == REFERENCE and not any(i.split("=")[0].strip() == "compile" for i in items):
            # the reference is the definition (rsgn.ops); the compiled CPU kernels agree with it
            # to float rounding, and a near-tie can pick another winner
            items.insert(0, "compile=eager")
        opts = make_options(r.target, preset=r.preset, items=items)
        be = get_backend(r.target, options=opts)
        be.check(spec)  # a target that cannot run the model: refused before any work
        note = cls.emulated()
        plan.append((r, be, note or ""))
    out_rows: list[dict[str, Any]] = []
    full: dict[str, Any] = {}
    ref_logits: torch.Tensor | None = None
    for r, be, msg in plan:
        if be is None:
            out_rows.append(_skipped_row(r, msg))
            continue
        if msg:
            notes.append(f"{r.label}: {msg}")
        label = f"{r.target}:{be.options.preset}" if be.options.preset else r.target
        torch.manual_seed(seed)
        try:
            ev = evaluate(
                spec, x, y, be, batch_size=batch_size, keep_logits=True, show_progress=show_progress
            )
        except (RsgnError, RuntimeError, ValueError) as exc:
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            out_rows.append(_skipped_row(RowSpec(r.target, be.options.preset), f"failed: {first}"))
            continue
        if r.target == REFERENCE and ref_logits is None:
            ref_logits = ev.logits
            agree: dict[str, Any] = dict.fromkeys(
                ("agreement", "max_abs_logit_err", "mean_abs_logit_err"),
                "n/a: the torch reference",
            )
        elif ref_logits is None:
            agree = dict.fromkeys(
                ("agreement", "max_abs_logit_err", "mean_abs_logit_err"),
                "n/a: the torch reference did not run",
            )
        else:
            agree = agreement(ev.logits, ref_logits)
        row = {
            "row": label,
            "target": r.target,
            "preset": be.options.preset or None,
            "status": "ok",
            "n_samples": ev.n_samples,
            "accuracy": ev.accuracy,
            **agree,
            **_latency_cells(ev),
            **_energy_cells(ev),
            "active_fraction": ev.active_fraction,
        }
        out_rows.append({c: row[c] for c in COLUMNS})
        d = ev.to_dict()
        full[label] = {"evaluation": d, "options": be.options.to_dict()}
    for base in baselines or []:
        torch.manual_seed(seed)
        ev = evaluate(base, x, y, "torch", batch_size=batch_size, show_progress=show_progress)
        label = f"{base.model_name} (baseline)"
        why = "n/a: a baseline is another model; agreement is with the RSGN's own reference"
        row = {
            "row": label,
            "target": "torch",
            "preset": ev.report.preset,
            "status": "ok",
            "n_samples": ev.n_samples,
            "accuracy": ev.accuracy,
            **dict.fromkeys(("agreement", "max_abs_logit_err", "mean_abs_logit_err"), why),
            **_latency_cells(ev),
            **_energy_cells(ev),
            "active_fraction": ev.active_fraction,
        }
        out_rows.append({c: row[c] for c in COLUMNS})
        full[label] = {"evaluation": ev.to_dict(), "options": {}}
    return {
        "reference": REFERENCE,
        "n_samples": int(len(y)),
        "batch_size": batch_size,
        "seed": seed,
        "notes": notes,
        "columns": COLUMNS,
        "rows": out_rows,
        "targets": full,
        "versions": versions(),
    }


def failed_rows(report: dict[str, Any]) -> list[str]:
    """Labels of the rows that were asked for and failed."""
    return [r["row"] for r in report["rows"] if str(r["status"]).startswith("failed")]


# --------------------------------------------------------------------------------- output
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}={_fmt(e)}" for k, e in v.items())
    return "" if v is None else str(v)


def table_text(report: dict[str, Any]) -> str:
    """The report's table as Markdown (reasons of n/a cells in full)."""
    cols = list(report["columns"])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in report["rows"]:
        lines.append("| " + " | ".join(_fmt(r[c]).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def summary_text(report: dict[str, Any]) -> str:
    """A short fixed-width summary for the terminal."""
    head = f"{'row':26s} {'status':8s} {'acc':>6s} {'agree':>6s} {'lat/inf s':>10s} "
    head += f"{'E/inf J':>10s} {'active':>7s}"
    out = [head]

    def num(v: Any, w: int, f: str) -> str:
        return f"{v:{w}{f}}" if isinstance(v, float) else f"{'n/a':>{w}s}"

    for r in report["rows"]:
        status = "ok" if r["status"] == "ok" else str(r["status"]).split(":", 1)[0]
        out.append(
            f"{r['row']:26s} {status:8s} {num(r['accuracy'], 6, '.3f')} "
            f"{num(r['agreement'], 6, '.3f')} {num(r['latency_s_per_inference'], 10, '.3g')} "
            f"{num(r['energy_j_per_inference'], 10, '.3g')} {num(r['active_fraction'], 7, '.3f')}"
        )
    for r in report["rows"]:
        if r["status"] != "ok":
            out.append(f"{r['row']}: {r['status']}")
    out.extend(f"note: {n}" for n in report["notes"])
    return "\n".join(out)


def _csv_bytes(report: dict[str, Any]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(report["columns"]), lineterminator="\n")
    w.writeheader()
    for r in report["rows"]:
        w.writerow(
            {c: json.dumps(v) if isinstance(v, dict) else _csv_cell(v) for c, v in r.items()}
        )
    return buf.getvalue().encode()


def _csv_cell(v: Any) -> Any:
    return "" if v is None else (repr(v) if isinstance(v, float) else v)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (energy, accuracy) points no other point beats on both (lower energy,
    higher accuracy)."""
    front = []
    for i, (e, a) in enumerate(points):
        dominated = any(
            (e2 <= e and a2 >= a) and (e2 < e or a2 > a)
            for j, (e2, a2) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def new_report_dir(out: str | Path) -> Path:
    """``out`` if it does not exist (or is an empty folder), else ``out-2``, ``out-3``...: an
    earlier report is never overwritten. A path that is a file is an RsgnError."""
    base = Path(out)
    cand, k = base, 1
    while True:
        if cand.is_file():
            raise RsgnError(f"--out {cand} is a file, not a folder")
        if not cand.exists() or (cand.is_dir() and not any(cand.iterdir())):
            return cand
        k += 1
        cand = base.with_name(f"{base.name}-{k}")


def write_report(report: dict[str, Any], out: str | Path) -> dict[str, str]:
    """Write the report files into the folder ``out`` (created); returns the paths."""
    from rsgn.plots import compare_plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": "compare.json", "csv": "compare.csv", "table": "compare.md"}
    atomic_write_bytes(out / files["csv"], _csv_bytes(report))
    md = table_text(report)
    if report["notes"]:
        md += "\n" + "\n".join(f"- {n}" for n in report["notes"]) + "\n"
    atomic_write_bytes(out / files["table"], md.encode())
    batches = {
        label: t["evaluation"]["details"].get("per_batch", [t["evaluation"]["details"]])
        for label, t in report["targets"].items()
    }
    atomic_write_json(out / "batches.json", batches)
    files["batches"] = "batches.json"
    for name in compare_plots(report, out):
        files[name.rsplit(".", 1)[0]] = name
    paths = {k: str(out / v) for k, v in files.items()}
    slim = {
        **report,
        "targets": {
            label: {
                **t,
                "evaluation": {k: v for k, v in t["evaluation"].items() if k != "details"},
            }
            for label, t in report["targets"].items()
        },
    }
    atomic_write_json(out / files["json"], {**slim, "files": paths})
    return paths


def run_compare(
    ckpt: str | Path,
    *,
    task: str | None,
    data: str | None,
    backends: str | None,
    presets: list[str],
    out: str | Path | None,
    limit: int | None,
    batch_size: int = 64,
    backend_args: list[str] | None = None,
    baselines: list[str] | None = None,
    show_progress: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``rsgn compare`` command: load, split, compare, write (``out`` defaults to
    ``<run folder>/compare``; an existing report folder gets a numbered sibling)."""
    from rsgn.checkpoint import load_model, resolve
    from rsgn.data import check_features, load_data

    if batch_size <= 0:
        raise RsgnError(f"--batch-size must be positive, got {batch_size}")
    if limit is not None and limit <= 0:
        raise RsgnError(f"--limit must be positive, got {limit}")
    rows, explicit = parse_rows(backends, presets)
    target_args = parse_target_args(list(backend_args or []), rows)
    folder = new_report_dir(out if out is not None else resolve(ckpt).parent / "compare")
    model, cfg, _ = load_model(ckpt)
    seed = cfg.train.seed
    ds = load_data(cfg.data, task=task, npz=data, seed=seed, n_classes=model.n_classes)
    check_features(ds, model.d_in)
    if ds.n_classes != model.n_classes:
        raise RsgnError(f"task has {ds.n_classes} classes but the model has {model.n_classes}")
    others = []
    for path in baselines or []:
        other, _, _ = load_model(path)
        if not getattr(other, "model_name", None):
            raise RsgnError(f"--baseline {path} is an RSGN run; give it as --ckpt")
        if (other.d_in, other.n_classes) != (model.d_in, model.n_classes):
            raise RsgnError(
                f"--baseline {path} takes {other.d_in} features / {other.n_classes} classes, "
                f"the RSGN {model.d_in} / {model.n_classes}: not the same task"
            )
        others.append(other)
    x, y = ds.x_val, ds.y_val
    if limit is not None:
        x, y = x[:limit], y[:limit]
    report = compare(
        model,
        x,
        y,
        rows,
        target_args=target_args,
        explicit=explicit,
        batch_size=batch_size,
        seed=seed,
        baselines=others,
        show_progress=show_progress,
    )
    report = {"ckpt": str(ckpt), "data": ds.name, **report}
    return report, write_report(report, folder)
