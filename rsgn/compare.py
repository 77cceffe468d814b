"""``rsgn compare``: one checkpoint, the same inputs, every backend, one report.

Each listed backend runs the model through :func:`rsgn.evaluate.evaluate` (the same batches of
the same validation split, the same torch seed before each run); the torch backend is the
reference that prediction agreement and logit errors are measured against (it is run even when
not listed). The report is a table with one row per backend:

- accuracy, prediction agreement and max / mean absolute logit error vs torch;
- latency: p50 / p99 per inference where the backend gives a per-inference distribution
  (the neuromorphic chip model), else the mean per inference of its per-batch figure, with
  ``latency_kind`` saying whether that figure is measured wall time or modelled;
- modelled energy per inference with its breakdown by op, counted events per inference, and
  the measured active fraction.

A metric a backend cannot report is the string ``"n/a: <reason>"`` (the reason from its
:class:`~rsgn.backends.base.Capabilities`), never 0. A backend that is not available here is a
``skipped`` row with the reason; Triton runs on the CPU under its interpreter only when it is
listed explicitly and ``TRITON_INTERPRET=1`` is set, and the report says so.

Files: ``compare.json`` (everything, including each backend's full evaluation report),
``compare.csv`` and ``compare.md`` (the table), ``energy_breakdown.png`` and ``pareto.png``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsgn.checkpoint import atomic_write_bytes, atomic_write_json, versions
from rsgn.errors import RsgnError

REFERENCE = "torch"
DEFAULT_BACKENDS = ("torch", "triton", "optical", "neuromorphic")

COLUMNS: dict[str, str] = {
    "backend": "backend name",
    "preset": "the backend's hardware / energy preset",
    "status": "ok, skipped: <reason> or failed: <error>",
    "n_samples": "validation samples run",
    "accuracy": "fraction of samples classified correctly",
    "agreement": "fraction of samples whose predicted class equals the torch reference's",
    "max_abs_logit_err": "max |logit - torch logit| over samples and classes",
    "mean_abs_logit_err": "mean |logit - torch logit| over samples and classes",
    "latency_p50_s": "median latency per inference (s), where a distribution is given",
    "latency_p99_s": "99th-percentile latency per inference (s), where a distribution is given",
    "latency_s_per_inference": "mean latency per inference (s): per-batch figure / batch size",
    "latency_kind": "how the backend knows its latency (measured or modelled, and how)",
    "energy_j_per_inference": "modelled energy per inference (J)",
    "energy_kind": "how the backend knows its energy",
    "energy_measured": "measured energy (J) where a power counter exists",
    "energy_breakdown_j_per_inference": "modelled energy per inference by op (J)",
    "events_per_inference": "counted events per inference, all kinds summed",
    "event_kind": "what the events are",
    "active_fraction": "mean fraction of nodes active per propagation step (measured)",
}

NUMERIC = (
    "accuracy",
    "agreement",
    "max_abs_logit_err",
    "mean_abs_logit_err",
    "latency_p50_s",
    "latency_p99_s",
    "latency_s_per_inference",
    "energy_j_per_inference",
    "events_per_inference",
    "active_fraction",
)


def parse_backends(text: str | None) -> tuple[list[str], bool]:
    """Backend names from ``a,b,c`` (default: all four); returns (names, explicit)."""
    from rsgn.backends.registry import names

    if text is None:
        return list(DEFAULT_BACKENDS), False
    out: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        if name not in names():
            raise RsgnError(f"unknown backend {name!r} in --backends (known: {', '.join(names())})")
        if name not in out:
            out.append(name)
    if not out:
        raise RsgnError("--backends lists no backend")
    return out, True


def parse_presets(items: list[str], backends: list[str]) -> dict[str, str]:
    """``backend=name`` items of ``--preset``; the backend must be one that is compared."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise RsgnError(f"--preset expects backend=name, got {item!r}")
        be, name = (s.strip() for s in item.split("=", 1))
        if be not in backends:
            raise RsgnError(f"--preset {item!r}: backend {be!r} is not in --backends")
        if not name:
            raise RsgnError(f"--preset {item!r}: empty preset name")
        out[be] = name
    return out


def parse_backend_args(items: list[str], backends: list[str]) -> dict[str, dict[str, Any]]:
    """``backend.key=value`` items of ``--backend-arg`` -> constructor options per backend; the
    backend must be one that is compared and the key one of its options."""
    from rsgn.backends.registry import parse_backend_options

    grouped: dict[str, list[str]] = {}
    for item in items:
        head, sep, _ = item.partition("=")
        be, dot, key = head.partition(".")
        be = be.strip()
        if not sep or not dot or not be or not key.strip():
            raise RsgnError(f"--backend-arg expects BACKEND.KEY=VALUE, got {item!r}")
        if be not in backends:
            raise RsgnError(f"--backend-arg {item!r}: backend {be!r} is not in --backends")
        grouped.setdefault(be, []).append(item.partition(".")[2])
    return {be: parse_backend_options(be, its) for be, its in grouped.items()}


def _na(reason: str) -> str:
    return reason if reason.startswith("n/a") else f"n/a: {reason}"


def _cap(caps, key: str) -> str | None:
    v = caps.metrics.get(key)
    return None if v is None else str(v)


def _skipped_row(name: str, preset: str | None, status: str) -> dict[str, Any]:
    row: dict[str, Any] = {"backend": name, "preset": preset, "status": status, "n_samples": 0}
    why = _na(f"{name} {status}")
    for col in COLUMNS:
        if col not in row:
            row[col] = why
    return row


def _availability(name: str, explicit: bool) -> tuple[bool, str, str | None]:
    """(run it?, reason if not, note if it runs in a special mode)."""
    from rsgn.backends.registry import backend_class

    try:
        ok, why = backend_class(name).available()
    except RsgnError as exc:
        return False, str(exc), None
    if not ok:
        return False, why, None
    if name == "triton" and not torch.cuda.is_available():
        if not explicit:
            return (
                False,
                "no CUDA GPU; the Triton interpreter on the CPU runs only when asked for "
                "explicitly (--backends ...,triton,... with TRITON_INTERPRET=1)",
                None,
            )
        return (
            True,
            "",
            "Triton ran on the CPU under its interpreter (TRITON_INTERPRET=1, asked for "
            "explicitly): its latency is interpreter wall time, not a GPU figure",
        )
    return True, "", None


def _latency(name: str, caps, details: dict[str, Any], n: int) -> dict[str, Any]:
    kind = _cap(caps, "latency") or "n/a: the backend does not say how it knows its latency"
    dist: list[float] = []
    for m in details["batch_metrics"]:
        v = m.get("latency_per_inference_s")
        if isinstance(v, list):
            dist.extend(float(t) for t in v)
    lats = details["batch_latency_s"]
    out: dict[str, Any] = {"latency_kind": kind}
    if dist and len(dist) == n:
        arr = np.asarray(dist, dtype=np.float64)
        out["latency_p50_s"] = float(np.percentile(arr, 50))
        out["latency_p99_s"] = float(np.percentile(arr, 99))
    else:
        sizes = sorted(set(details["batch_sizes"]))
        why = _na(
            f"{name} gives one latency per batch (batch size {'/'.join(map(str, sizes))}), "
            "not a per-inference distribution"
        )
        out["latency_p50_s"] = out["latency_p99_s"] = why
    if kind.startswith("n/a"):
        out["latency_s_per_inference"] = kind
    elif lats and all(isinstance(t, float) for t in lats):
        out["latency_s_per_inference"] = math.fsum(lats) / max(1, n)
    else:
        bad = next((t for t in lats if not isinstance(t, float)), "no batches")
        out["latency_s_per_inference"] = _na(str(bad))
    return out


def _energy(caps, report: dict[str, Any], n: int) -> dict[str, Any]:
    cost = report.get("cost")
    kind = _cap(caps, "energy_modelled") or "n/a: the backend models no energy"
    measured = _cap(caps, "energy_measured") or "n/a: the backend reads no power counter"
    out: dict[str, Any] = {"energy_kind": kind, "energy_measured": _na(measured)}
    if measured.startswith("measured"):  # no backend reads a power counter yet
        out["energy_measured"] = "n/a: measured energy is not part of the cost report"
    if not isinstance(cost, dict) or not isinstance(cost.get("energy_j"), float):
        why = _na(str(cost.get("energy_j") if isinstance(cost, dict) else cost or kind))
        out["energy_j_per_inference"] = why
        out["energy_breakdown_j_per_inference"] = why
    else:
        out["energy_j_per_inference"] = cost["energy_j"] / max(1, n)
        out["energy_breakdown_j_per_inference"] = {
            op: e / max(1, n) for op, e in cost.get("energy_j_by_op", {}).items()
        }
    if isinstance(cost, dict) and isinstance(cost.get("counts"), dict):
        out["events_per_inference"] = math.fsum(cost["counts"].values()) / max(1, n)
        out["event_kind"] = _cap(caps, "event_counts") or (
            "counted by the cost ledger (ops x events of the energy table, all kinds summed)"
        )
    else:
        out["events_per_inference"] = out["event_kind"] = "n/a: no cost ledger"
    return out


def _agreement(logits: torch.Tensor, ref: torch.Tensor | None, name: str) -> dict[str, Any]:
    if name == REFERENCE:
        why = "n/a: torch is the reference"
        return {"agreement": why, "max_abs_logit_err": why, "mean_abs_logit_err": why}
    if ref is None:
        why = "n/a: the torch reference did not run"
        return {"agreement": why, "max_abs_logit_err": why, "mean_abs_logit_err": why}
    diff = (logits.double() - ref.double()).abs()
    return {
        "agreement": float((logits.argmax(1) == ref.argmax(1)).double().mean()),
        "max_abs_logit_err": float(diff.max()),
        "mean_abs_logit_err": float(diff.mean()),
    }


def compare(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    backends: list[str],
    *,
    presets: dict[str, str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    explicit: bool = True,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Run ``model`` on every backend in ``backends`` on the same ``x``; return the report.

    ``explicit`` says the user listed the backends (Triton under the interpreter runs only
    then). ``options`` are constructor keywords per backend (``--backend-arg``). Bad preset
    names and options are RsgnErrors before anything runs; a backend that fails while running
    is a ``failed: <error>`` row.
    """
    from rsgn.backends.registry import get_backend
    from rsgn.evaluate import evaluate

    if getattr(model, "model_name", None):
        raise RsgnError("compare runs the RSGN on every backend; baselines run on torch only")
    presets = dict(presets or {})
    options = {k: dict(v) for k, v in (options or {}).items()}
    order = [REFERENCE] + [b for b in backends if b != REFERENCE]
    notes: list[str] = []
    if REFERENCE not in backends:
        notes.append("torch was not listed; it ran anyway as the reference for agreement")
    plan: list[tuple[str, bool, str, str | None]] = []
    for name in order:
        run, why, note = _availability(name, explicit)
        if run:  # instantiate once up front: a bad preset fails before anything runs
            get_backend(name, preset=presets.get(name), **options.get(name, {}))
        plan.append((name, run, why, note))
    rows: list[dict[str, Any]] = []
    full: dict[str, Any] = {}
    ref_logits: torch.Tensor | None = None
    for name, run, why, note in plan:
        preset = presets.get(name)
        if not run:
            rows.append(_skipped_row(name, preset, f"skipped: {why}"))
            continue
        if note:
            notes.append(note)
        torch.manual_seed(seed)
        try:
            be = get_backend(name, preset=preset, **options.get(name, {}))
            rep, det = evaluate(model, x, y, be, batch_size=batch_size, return_details=True)
        except (RsgnError, RuntimeError, ValueError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            rows.append(_skipped_row(name, preset, f"failed: {msg}"))
            continue
        logits, caps, n = det["logits"], det["capabilities"], rep["n_samples"]
        if name == REFERENCE:
            ref_logits = logits
        row: dict[str, Any] = {
            "backend": name,
            "preset": rep.get("preset"),
            "status": "ok",
            "n_samples": n,
            "accuracy": rep["accuracy"],
            **_agreement(logits, ref_logits, name),
            **_latency(name, caps, det, n),
            **_energy(caps, rep, n),
            "active_fraction": rep["active_fraction"],
        }
        rows.append({c: row[c] for c in COLUMNS})
        full[name] = {
            "evaluation": rep,
            "capabilities": {"devices": list(caps.devices), "notes": caps.notes},
            "options": options.get(name, {}),
            "note": note,
        }
    return {
        "reference": REFERENCE,
        "n_samples": int(len(y)),
        "batch_size": batch_size,
        "seed": seed,
        "notes": notes,
        "columns": COLUMNS,
        "rows": rows,
        "backends": full,
        "versions": versions(),
    }


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
    head = f"{'backend':14s} {'status':8s} {'acc':>6s} {'agree':>6s} {'lat/inf s':>10s} "
    head += f"{'E/inf J':>10s} {'active':>7s}"
    out = [head]
    for r in report["rows"]:
        status = "ok" if r["status"] == "ok" else r["status"].split(":", 1)[0]

        def num(v: Any, w: int, f: str) -> str:
            return f"{v:{w}{f}}" if isinstance(v, float) else f"{'n/a':>{w}s}"

        out.append(
            f"{r['backend']:14s} {status:8s} {num(r['accuracy'], 6, '.3f')} "
            f"{num(r['agreement'], 6, '.3f')} {num(r['latency_s_per_inference'], 10, '.3g')} "
            f"{num(r['energy_j_per_inference'], 10, '.3g')} {num(r['active_fraction'], 7, '.3f')}"
        )
    for r in report["rows"]:
        if r["status"] != "ok":
            out.append(f"{r['backend']}: {r['status']}")
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


def _plots(report: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in report["rows"] if isinstance(r["energy_j_per_inference"], float)]
    written: list[str] = []
    fig, ax = plt.subplots(figsize=(7, 0.6 * max(2, len(ok)) + 1.5))
    ops = sorted({op for r in ok for op in r["energy_breakdown_j_per_inference"]})
    cmap = plt.get_cmap("tab20")
    left = np.zeros(len(ok))
    for i, op in enumerate(ops):
        vals = np.array([r["energy_breakdown_j_per_inference"].get(op, 0.0) for r in ok])
        ax.barh(range(len(ok)), vals, left=left, label=op, color=cmap(i % 20))
        left += vals
    ax.set_yticks(range(len(ok)), [f"{r['backend']} ({r['preset']})" for r in ok])
    ax.set_xlabel("modelled energy per inference (J)")
    ax.set_title("Energy breakdown by op")
    if ops:
        ax.legend(fontsize=7, loc="best")
    if not ok:
        ax.text(0.5, 0.5, "no backend reported energy", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(out / "energy_breakdown.png", buf.getvalue())
    written.append("energy_breakdown.png")

    pts = [r for r in ok if isinstance(r["accuracy"], float)]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    front = pareto_front([(r["energy_j_per_inference"], r["accuracy"]) for r in pts])
    for i, r in enumerate(pts):
        ax.scatter(
            r["energy_j_per_inference"],
            r["accuracy"],
            s=50,
            zorder=3,
            marker="o" if i in front else "x",
        )
        ax.annotate(f" {r['backend']}", (r["energy_j_per_inference"], r["accuracy"]), fontsize=8)
    if front:
        fp = sorted((pts[i]["energy_j_per_inference"], pts[i]["accuracy"]) for i in front)
        ax.step(
            [p[0] for p in fp],
            [p[1] for p in fp],
            where="post",
            color="0.5",
            lw=1,
            label="Pareto front",
        )
        ax.legend(fontsize=8)
    if pts and all(r["energy_j_per_inference"] > 0 for r in pts):
        ax.set_xscale("log")
    ax.set_xlabel("modelled energy per inference (J)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs energy")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(out / "pareto.png", buf.getvalue())
    written.append("pareto.png")
    return written


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


def write_report(report: dict[str, Any], out: str | Path) -> dict[str, str]:
    """Write compare.json / .csv / .md and the two plots under ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": "compare.json", "csv": "compare.csv", "table": "compare.md"}
    atomic_write_bytes(out / files["csv"], _csv_bytes(report))
    md = table_text(report)
    if report["notes"]:
        md += "\n" + "\n".join(f"- {n}" for n in report["notes"]) + "\n"
    atomic_write_bytes(out / files["table"], md.encode())
    plots = _plots(report, out)
    files.update({p.rsplit(".", 1)[0]: p for p in plots})
    paths = {k: str(out / v) for k, v in files.items()}
    atomic_write_json(out / files["json"], {**report, "files": paths})
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
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``rsgn compare`` command: load, split, compare, write (``out`` defaults to
    ``<run folder>/compare``)."""
    from rsgn.checkpoint import load_model, resolve
    from rsgn.data import check_features, load_npz, make_task

    if batch_size <= 0:
        raise RsgnError(f"--batch-size must be positive, got {batch_size}")
    if limit is not None and limit <= 0:
        raise RsgnError(f"--limit must be positive, got {limit}")
    names, explicit = parse_backends(backends)
    preset_map = parse_presets(presets, names)
    options = parse_backend_args(list(backend_args or []), names)
    model, cfg, _ = load_model(ckpt)
    seed = cfg.train.seed
    if task:
        ds = make_task(task, cfg.data, seed=seed)
    else:
        vf = cfg.data.val_fraction
        ds = load_npz(data, seed=seed, val_fraction=vf, n_classes=model.n_classes)
    check_features(ds, model.d_in)
    if ds.n_classes != model.n_classes:
        raise RsgnError(f"task has {ds.n_classes} classes but the model has {model.n_classes}")
    x, y = ds.x_val, ds.y_val
    if limit is not None:
        x, y = x[:limit], y[:limit]
    report = compare(
        model,
        x,
        y,
        names,
        presets=preset_map,
        options=options,
        explicit=explicit,
        batch_size=batch_size,
        seed=seed,
    )
    report = {"ckpt": str(ckpt), "data": ds.name, "triton_interpret": _interp(), **report}
    if out is None:
        out = resolve(ckpt).parent / "compare"
    return report, write_report(report, out)


def _interp() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"
