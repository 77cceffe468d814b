"""Train-step and inference time and peak memory: sparse RSGN (torch backend) vs the dense
N x N formulation of the public code, same machine, same run.

    python studies/sparse_vs_dense/bench.py                 # full table -> results.json/.md
    python studies/sparse_vs_dense/bench.py --quick         # N=256,1024 only, 2 repeats

Models: ``dense`` (the public code's formulation), ``sparse`` (the RSGN on the reference
op table, eager torch) and ``compiled`` (the RSGN on the torch target's default table: the
numba step kernels of issue 20); ``studies/cpu_compiled/bench.py`` runs all three.
Each (model, N) runs in a fresh subprocess so peak RSS is its own. Batch 64, sequence 64,
hidden 128, 32 input features, 20 classes, paper defaults otherwise (sparse: 5% active cap,
k=16 in-edges + 4 sprout slots). A train step is forward + cross-entropy + backward + AdamW.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# ``--model twin``: the sparse model with exactly the dense formulation's parameters (no token
# encoder, h(0) from the token mean; rsgn.dense.DenseRSGN computes that model densely), so the
# two formulations of one model are compared. ``default``: the package's default model (conv
# token encoder, attention initial state), which does more than the dense formulation.
MODELS = {"default": {}, "twin": {"encoder_width": 0, "init_state": "mean"}}


def run_one(
    kind: str, n: int, repeats: int, batch: int, seq: int, hidden: int, config: str = "default"
) -> dict:
    import torch

    from rsgn.config import ModelConfig
    from rsgn.dense import DenseRSGN
    from rsgn.malloc_tuning import tune_malloc
    from rsgn.model import RSGN

    tune_malloc()  # same allocator settings for both models (see rsgn/malloc_tuning.py)
    torch.manual_seed(0)
    cfg = ModelConfig(n_nodes=n, d_hidden=hidden, hebbian=False, **MODELS[config])
    table = None
    if kind == "compiled":  # the torch target's default op table (numba kernels, issue 20)
        from rsgn.backends.torch.target import op_table

        table = op_table("numba")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model = (DenseRSGN if kind == "dense" else RSGN)(32, 20, cfg)
    build_s = time.perf_counter() - t0
    x = torch.randn(batch, seq, 32)
    y = torch.randint(0, 20, (batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def run() -> object:  # the plain call when no table is given (an older rsgn has no kwarg)
        return model(x) if table is None else model(x, ops_table=table)

    def logits():
        return run() if kind == "dense" else run().logits

    def train_step():
        loss = torch.nn.functional.cross_entropy(logits(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    train_step()  # warm-up
    tr = []
    for _ in range(repeats):
        t = time.perf_counter()
        train_step()
        tr.append(time.perf_counter() - t)
    inf = []
    with torch.no_grad():
        logits()
        for _ in range(repeats):
            t = time.perf_counter()
            logits()
            inf.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = {
        "model": kind,
        "config": config,
        "params": sum(p.numel() for p in model.parameters()),
        "n_nodes": n,
        "batch": batch,
        "seq": seq,
        "hidden": hidden,
        "train_step_s": sorted(tr)[len(tr) // 2],
        "train_step_s_min": min(tr),
        "infer_s": sorted(inf)[len(inf) // 2],
        "infer_s_min": min(inf),
        "peak_rss_mib": peak / 1024,
        "rss_before_model_mib": rss0 / 1024,
        "build_s": build_s,
        "repeats": repeats,
    }
    if kind != "dense":
        with torch.no_grad():
            fr = run().active_fraction_per_step
            res["active_fraction"] = float(sum(fr[1:]) / cfg.n_steps)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument(
        "--kinds", default="dense,sparse", help="models to run (dense, sparse, compiled)"
    )
    ap.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="default",
        help="the RSGN configuration: the package default, or 'twin' (exactly the dense "
        "formulation's parameters: no token encoder, h(0) from the token mean)",
    )
    ap.add_argument("--sizes", default=None, help="only these N (comma-separated)")
    args = ap.parse_args()
    batch, seq, hidden = 64, 64, 128
    if args.one:
        kind, n = args.one[0], int(args.one[1])
        reps = args.repeats or 3
        print(json.dumps(run_one(kind, n, reps, batch, seq, hidden, args.model)))
        return
    if args.quick:
        plan = [("dense", 256, 2), ("sparse", 256, 2), ("dense", 1024, 2), ("sparse", 1024, 2)]
    else:
        plan = [
            ("dense", 256, 5),
            ("sparse", 256, 5),
            ("dense", 1024, 3),
            ("sparse", 1024, 5),
            ("dense", 4096, 1),
            ("sparse", 4096, 3),
            ("sparse", 16384, 3),
            ("sparse", 65536, 2),
        ]
    kinds = args.kinds.split(",")
    plan = [p for p in plan if p[0] in kinds]
    if args.sizes:
        sizes = {int(v) for v in args.sizes.split(",")}
        plan = [p for p in plan if p[1] in sizes]
    if "compiled" in kinds:  # at every N the sparse model runs
        plan += [("compiled", n, reps) for kind, n, reps in plan if kind == "sparse"]
        plan.sort(key=lambda p: (p[1], ("dense", "sparse", "compiled").index(p[0])))
    rows = []
    for kind, n, reps in plan:
        cmd = [sys.executable, __file__, "--one", kind, str(n), "--repeats", str(reps)]
        cmd += ["--model", args.model]
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"benchmark {kind} N={n} failed")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(
            f"{kind:6s} N={n:6d} train {r['train_step_s']:.4f}s infer {r['infer_s']:.4f}s "
            f"peak {r['peak_rss_mib']:.0f} MiB ({time.perf_counter() - t:.0f}s)",
            flush=True,
        )
    import torch

    meta = {
        "command": " ".join(["python", *sys.argv]),
        "machine": f"{platform.machine()} {_cpu()} x{os.cpu_count()} cores, "
        f"{_mem_gib():.0f} GiB, {platform.system()}",
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model,
    }
    from rsgn.checkpoint import atomic_write_bytes, atomic_write_json

    atomic_write_json(args.out, {"meta": meta, "rows": rows})
    atomic_write_bytes(Path(args.out).with_suffix(".md"), _table(meta, rows).encode())
    print(_table(meta, rows))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")


def _table(meta: dict, rows: list[dict]) -> str:
    dense = {r["n_nodes"]: r for r in rows if r["model"] == "dense"}
    eager = {r["n_nodes"]: r for r in rows if r["model"] == "sparse"}
    out = [
        f"Machine: {meta['machine']}; torch {meta['torch']}, {meta['threads']} threads; "
        f"{meta['date']}",
        f"Command: `{meta['command']}`",
        f"RSGN configuration: {meta.get('model', 'default')} ({rows[0].get('params', '?')} "
        "parameters in the first row)"
        if rows
        else "",
        "",
        "| N | model | train step (s) | inference (s) | peak RSS (MiB) | active fraction "
        "| train speed-up vs dense | train speed-up vs eager sparse |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = r["n_nodes"]
        sp = vs_eager = ""
        if r["model"] != "dense" and n in dense:
            sp = f"{dense[n]['train_step_s'] / r['train_step_s']:.1f}x"
        if r["model"] == "compiled" and n in eager:
            vs_eager = f"{eager[n]['train_step_s'] / r['train_step_s']:.2f}x"
        af = f"{r['active_fraction']:.2%}" if "active_fraction" in r else "100% (dense)"
        out.append(
            f"| {n} | {r['model']} | {r['train_step_s']:.4f} | "
            f"{r['infer_s']:.4f} | {r['peak_rss_mib']:.0f} | {af} | {sp} | {vs_eager} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
