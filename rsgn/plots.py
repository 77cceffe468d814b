"""Plots of comparison reports (matplotlib, PNG, written atomically).

- ``energy_breakdown.png``: modelled energy per inference of each row on a log axis: the total
  as a bar, each op of the shared vocabulary (:data:`OP_ORDER`) as a marker of its own colour,
  so rows of every target line up and small parts stay visible next to large ones.
- ``latency.png``: latency per inference of each row on a log axis: the distribution (box of
  p25-p75, whiskers p1-p99) where the target gives one, else a point; measured and modelled
  figures drawn differently.
- ``pareto.png``: accuracy against energy per inference, the Pareto front (lower energy and
  higher accuracy) drawn as a step line, one marker per target and labels placed apart.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from rsgn.backends.base import OPS
from rsgn.checkpoint import atomic_write_bytes

OP_ORDER = OPS

_MARKERS = {"torch": "o", "triton": "s", "optical": "D", "optical-aware": "d", "neuromorphic": "^"}


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish_rows(ax, labels: list[str], xlabel: str, title: str, empty: str) -> None:
    """One row per report row on a log x axis, legend outside the axes."""
    if labels:
        ax.set_xscale("log")
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", which="major", alpha=0.4)


def energy_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Total and per-op modelled energy per inference, log x axis."""
    plt = _plt()
    ok = [r for r in rows if isinstance(r["energy_j_per_inference"], float)]
    fig, ax = plt.subplots(figsize=(8, 0.55 * max(2, len(ok)) + 1.6))
    ops = [o for o in OP_ORDER if any(o in r["energy_breakdown_j_per_inference"] for r in ok)]
    ops += sorted({o for r in ok for o in r["energy_breakdown_j_per_inference"]} - set(ops))
    cmap = plt.get_cmap("tab20")
    y = np.arange(len(ok))
    totals = [r["energy_j_per_inference"] for r in ok]
    if ok:
        ax.barh(y, totals, color="0.85", edgecolor="0.5", height=0.6, label="total")
        for i, op in enumerate(ops):
            vals = [r["energy_breakdown_j_per_inference"].get(op, 0.0) for r in ok]
            pts = [(v, yy) for v, yy in zip(vals, y, strict=True) if v > 0]
            if pts:
                ax.scatter(*zip(*pts, strict=True), s=28, color=cmap(i % 20), zorder=3, label=op)
    _finish_rows(
        ax,
        [r["row"] for r in ok],
        "modelled energy per inference (J, log scale)",
        "Energy per inference: total (bar) and by op (markers)",
        "no target reported energy",
    )
    _save(fig, path)


def latency_plot(rows: list[dict[str, Any]], dists: dict[str, list[float]], path: Path) -> None:
    """Latency per inference: distributions as boxes, single figures as points (log axis)."""
    plt = _plt()
    ok = [r for r in rows if isinstance(r["latency_s_per_inference"], float)]
    fig, ax = plt.subplots(figsize=(8, 0.55 * max(2, len(ok)) + 1.6))
    for i, r in enumerate(ok):
        modelled = str(r["latency_kind"]).startswith("modelled")
        colour = "tab:blue" if modelled else "tab:orange"
        d = dists.get(r["row"])
        if d:
            q = np.percentile(np.asarray(d, dtype=np.float64), [1, 25, 50, 75, 99])
            ax.plot([q[0], q[4]], [i, i], color=colour, lw=1)
            ax.add_patch(
                plt.Rectangle((q[1], i - 0.25), q[3] - q[1], 0.5, fc=colour, alpha=0.35, ec=colour)
            )
            ax.plot([q[2], q[2]], [i - 0.25, i + 0.25], color=colour, lw=2)
        else:
            ax.scatter(r["latency_s_per_inference"], i, color=colour, marker="o", zorder=3)
    if ok:
        ax.scatter([], [], color="tab:blue", label="modelled (box: p25-p75, whiskers p1-p99)")
        ax.scatter([], [], color="tab:orange", label="measured wall clock / inference")
    _finish_rows(
        ax,
        [r["row"] for r in ok],
        "latency per inference (s, log scale)",
        "Latency per inference",
        "no target reported latency",
    )
    _save(fig, path)


def pareto_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy vs modelled energy per inference with the Pareto front."""
    from rsgn.comparison import pareto_front

    plt = _plt()
    pts = [
        r
        for r in rows
        if isinstance(r["energy_j_per_inference"], float)
        and isinstance(r["accuracy"], float)
        and r["energy_j_per_inference"] > 0
    ]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    front = pareto_front([(r["energy_j_per_inference"], r["accuracy"]) for r in pts])
    for i, r in enumerate(pts):
        on = i in front
        ax.scatter(
            r["energy_j_per_inference"],
            r["accuracy"],
            s=60,
            zorder=3,
            marker=_MARKERS.get(r["target"], "o"),
            facecolors=f"C{i % 10}" if on else "none",
            edgecolors=f"C{i % 10}",
            label=f"{r['row']}{' (front)' if on else ''}",
        )
    if front:
        fp = sorted((pts[i]["energy_j_per_inference"], pts[i]["accuracy"]) for i in front)
        ax.step([p[0] for p in fp], [p[1] for p in fp], where="post", color="0.4", lw=1, zorder=2)
    if pts:
        ax.set_xscale("log")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.text(0.5, 0.5, "no target reported energy", ha="center", transform=ax.transAxes)
    ax.set_xlabel("modelled energy per inference (J, log scale)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs energy (filled: on the Pareto front, grey line)")
    ax.grid(which="major", alpha=0.4)
    _save(fig, path)


def compare_plots(report: dict[str, Any], out: Path) -> list[str]:
    """The three comparison plots into ``out``; returns their file names."""
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    dists = {
        label: t["evaluation"].get("latency_per_inference_s") or []
        for label, t in report["targets"].items()
    }
    energy_plot(rows, out / "energy_breakdown.png")
    latency_plot(rows, dists, out / "latency.png")
    pareto_plot(rows, out / "pareto.png")
    return ["energy_breakdown.png", "latency.png", "pareto.png"]
