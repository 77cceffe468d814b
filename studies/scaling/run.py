"""Scaling: time, peak memory and modelled energy per inference vs the number of nodes N.

    OMP_NUM_THREADS=1 python studies/scaling/run.py            # -> results.json/.csv, scaling.png
    OMP_NUM_THREADS=1 python studies/scaling/run.py --quick    # N=256,1024 only

Models (untrained, seed 0, 32 input features, 20 classes, hidden 128, paper defaults otherwise;
``hebbian=False``):

- ``dense``: :class:`rsgn.dense.DenseRSGN`, the N x N formulation of the public code (N <= 4096);
- ``sparse``: :class:`rsgn.model.RSGN` on the torch backend, batch 8, sequence 64; measured
  wall time of a forward pass (median of repeats) and the torch backend's modelled energy
  (``rsgn.evaluation.evaluate(..., backend="torch")``, electronic_45nm op counts);
- ``neuromorphic``: the same RSGN through ``evaluate(..., backend="neuromorphic")`` (preset
  ``loihi2_est``) on 2 inputs: modelled chip latency and energy per inference, plus the wall
  time of the simulation itself;
- ``optical``: ``evaluate(..., backend="optical", preset="bench")`` on 2 inputs: the report's
  modelled latency (critical path per inference) and energy per inference, plus the simulation
  wall time.

Each (model, N) point runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. A
model stops growing N once one point takes longer than ``--budget-s`` wall seconds (or fails).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS = [256, 1024, 4096, 16384, 65536, 262144, 1048576]
MAX_N = {"dense": 4096}
FEATURES, CLASSES, HIDDEN = 32, 20, 128
SEQ = {"dense": 64, "sparse": 64, "neuromorphic": 64, "optical": 64}
BATCH = {"dense": 8, "sparse": 8, "neuromorphic": 2, "optical": 2}


def _num(v):
    return v if isinstance(v, (int, float)) else None


def run_one(kind: str, n: int, repeats: int) -> dict:
    import torch

    from rsgn.config import ModelConfig
    from rsgn.dense import DenseRSGN
    from rsgn.malloc_tuning import tune_malloc
    from rsgn.model import RSGN

    tune_malloc()  # same allocator settings as studies/sparse_vs_dense/bench.py
    torch.manual_seed(0)
    cfg = ModelConfig(n_nodes=n, d_hidden=HIDDEN, hebbian=False)
    batch, seq = BATCH[kind], SEQ[kind]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model = (DenseRSGN if kind == "dense" else RSGN)(FEATURES, CLASSES, cfg)
    model.eval()
    build_s = time.perf_counter() - t0
    x = torch.randn(batch, seq, FEATURES)
    y = torch.randint(0, CLASSES, (batch,))
    res: dict = {"model": kind, "n_nodes": n, "batch": batch, "seq": seq, "hidden": HIDDEN}
    res["build_s"] = build_s
    if kind in ("dense", "sparse"):
        times = []
        with torch.no_grad():
            model(x)  # warm-up
            for _ in range(repeats):
                t = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t)
        res["wall_s_per_inference"] = sorted(times)[len(times) // 2] / batch
        res["repeats"] = repeats
        res["latency_kind"] = "measured (CPU wall time of a batched forward / batch)"
    if kind == "sparse":
        from rsgn.evaluation import evaluate

        rep = evaluate(model, x, y, backend="torch", batch_size=batch)
        res["energy_j_per_inference"] = rep.get("cost", {}).get("energy_j_per_inference")
        res["energy_kind"] = "modelled (torch backend op counts x electronic_45nm)"
        res["active_fraction"] = rep["active_fraction"]
    if kind == "optical":
        from rsgn.evaluation import evaluate

        t = time.perf_counter()
        rep = evaluate(model, x, y, backend="optical", preset="bench", batch_size=batch).report
        res["sim_wall_s_per_inference"] = (time.perf_counter() - t) / batch
        res["preset"] = "bench"
        res["energy_j_per_inference"] = rep.energy_per_inference.value
        res["energy_kind"] = "modelled (optical target, preset bench)"
        res["active_fraction"] = rep.active_fraction
        res["latency_s_per_inference"] = rep.latency.value
        res["latency_kind"] = f"modelled (optical target: {rep.latency.model})"
    if kind == "neuromorphic":
        from rsgn.evaluation import evaluate

        preset = "loihi2_est"
        t = time.perf_counter()
        rep, det = evaluate(
            model, x, y, backend=kind, preset=preset, batch_size=batch, return_details=True
        )
        res["sim_wall_s_per_inference"] = (time.perf_counter() - t) / batch
        res["preset"] = preset
        res["energy_j_per_inference"] = rep.get("cost", {}).get("energy_j_per_inference")
        res["energy_kind"] = f"modelled ({kind} backend, preset {preset})"
        res["active_fraction"] = rep["active_fraction"]
        lat = "n/a"
        bm = det["batch_metrics"][0] if det["batch_metrics"] else {}
        stats = bm.get("latency_stats_s") or {}
        per = bm.get("latency_per_inference_s")
        if per:
            lat = sum(per) / len(per)
        res["latency_stats_s"] = stats
        res["latency_kind"] = "modelled (SimPy chip time per inference)"
        res["latency_s_per_inference"] = lat
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["rss_before_model_mib"] = rss0 / 1024
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="dense,sparse,neuromorphic,optical")
    ap.add_argument("--budget-s", type=float, default=60.0, help="stop growing N past this")
    ap.add_argument("--timeout-s", type=float, default=180.0, help="kill one point after this")
    ap.add_argument("--big-n-s", type=float, default=5.0, help="N>65536 only if 1 inference fits")
    ap.add_argument("--ns", default=None, help="comma-separated N list (default: all <= --max-n)")
    ap.add_argument(
        "--merge", action="store_true", help="add these points to results.json instead of replacing"
    )
    ap.add_argument("--max-n", type=int, default=1048576)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.repeats), default=str))
        return
    ns = [n for n in NS if n <= (1024 if args.quick else args.max_n)]
    if args.ns:
        ns = [int(v) for v in args.ns.split(",")]
    t_all = time.perf_counter()
    rows, stops = [], {}
    for kind in args.models.split(","):
        for n in ns:
            if n > MAX_N.get(kind, 1 << 30):
                stops[kind] = f"not run above N={MAX_N[kind]} (dense N x N reference)"
                break
            cmd = [sys.executable, __file__, "--one", kind, str(n), "--repeats", str(args.repeats)]
            t = time.perf_counter()
            try:
                p = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=args.timeout_s,
                    env={**os.environ, "OMP_NUM_THREADS": "1"},
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                stops[kind] = f"N={n} killed after {args.timeout_s:.0f} s"
                print(kind, n, stops[kind], flush=True)
                break
            wall = time.perf_counter() - t
            if p.returncode != 0:
                stops[kind] = f"N={n} failed: {p.stderr.strip().splitlines()[-1:]}"
                print(kind, n, stops[kind], flush=True)
                break
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r["point_wall_s"] = wall
            rows.append(r)
            print(json.dumps(r, default=str)[:400], flush=True)
            per = _num(r.get("wall_s_per_inference")) or _num(r.get("sim_wall_s_per_inference"))
            nxt = n * 4
            if nxt > 65536 and per is not None and per * 4 > args.big_n_s:
                stops[kind] = (
                    f"not run above N={n}: one inference would take ~{per * 4:.1f} s > "
                    f"{args.big_n_s:.0f} s on this CPU (extrapolated x4): "
                    "needs a GPU or a longer run"
                )
                break
            if wall > args.budget_s:
                stops[kind] = f"stopped after N={n}: that point took {wall:.0f} s > budget"
                break
    old = json.loads((HERE / "results.json").read_text()) if args.merge else None
    if old:
        rerun = {r["model"] for r in rows} | set(stops)
        keys = {(r["model"], r["n_nodes"]) for r in rows}
        rows = sorted(
            [r for r in old["rows"] if (r["model"], r["n_nodes"]) not in keys] + rows,
            key=lambda r: (list(BATCH).index(r["model"]), r["n_nodes"]),
        )
        stops = {**{k: v for k, v in old["stops"].items() if k not in rerun}, **stops}
    out = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "omp_num_threads": 1,
        },
        "command": " ".join(["python", "studies/scaling/run.py", *sys.argv[1:]]),
        "wall_s": time.perf_counter() - t_all,
        "earlier_runs": (
            [*old.get("earlier_runs", []), {k: old[k] for k in ("command", "wall_s")}]
            if old
            else []
        ),
        "stops": stops,
        "rows": rows,
    }
    from rsgn.checkpoint import atomic_write_bytes

    atomic_write_bytes(HERE / "results.json", json.dumps(out, indent=1, default=str).encode())
    cols = [
        "model", "n_nodes", "batch", "seq", "wall_s_per_inference", "sim_wall_s_per_inference",
        "latency_s_per_inference", "latency_kind", "energy_j_per_inference", "peak_rss_mib",
        "active_fraction", "point_wall_s",
    ]  # fmt: skip
    with open(HERE / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    plot(rows)
    print(json.dumps({"wall_s": out["wall_s"], "stops": stops}, indent=1))


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [
        ("time per inference (s)", [
            ("dense", "wall_s_per_inference", "dense, measured"),
            ("sparse", "wall_s_per_inference", "torch sparse, measured"),
            ("neuromorphic", "latency_s_per_inference", "neuromorphic, modelled chip"),
            ("neuromorphic", "sim_wall_s_per_inference", "neuromorphic, simulator wall"),
            ("optical", "latency_s_per_inference", "optical bench, modelled"),
            ("optical", "sim_wall_s_per_inference", "optical, simulator wall"),
        ]),
        ("peak RSS (MiB)", [(k, "peak_rss_mib", k) for k in
                            ("dense", "sparse", "neuromorphic", "optical")]),
        ("modelled energy per inference (J)", [
            ("sparse", "energy_j_per_inference", "torch sparse (45nm)"),
            ("neuromorphic", "energy_j_per_inference", "neuromorphic loihi2_est"),
            ("optical", "energy_j_per_inference", "optical bench"),
        ]),
    ]  # fmt: skip
    for ax, (title, series) in zip(axes, panels, strict=True):
        for kind, key, label in series:
            pts = [(r["n_nodes"], _num(r.get(key))) for r in rows if r["model"] == kind]
            pts = [(n, v) for n, v in pts if v]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", label=label)
        ns = sorted({r["n_nodes"] for r in rows})
        if ns and ax.lines:
            y0 = ax.lines[0].get_ydata()[0]
            x0 = ax.lines[0].get_xdata()[0]
            ax.plot(ns, [y0 * n / x0 for n in ns], "k:", lw=0.8, label="~N")
            ax.plot(ns, [y0 * (n / x0) ** 2 for n in ns], "k--", lw=0.8, label="~N^2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("nodes N")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "scaling.png", dpi=120)


if __name__ == "__main__":
    main()
