"""GPU benchmark of one propagation step (propagate -> inhibit -> select -> update) on its own:
the reference decomposition (``rsgn.ops.TABLE``, the torch target's), the triton target's op
table op by op (``fused=False``) and with the fused step (``kernels.step``, its graph tables
bound as a triton program binds them), against the step's memory-bandwidth floor.

    python studies/gpu_kernels/step_bench.py --sizes 4096 65536 1048576 --ks 16 64

Per (N, k): batch 64, sequence 64, 32 features, hidden 128, 5% active; the state is the one
after ignition and one reference step (a realistic active set). Times are medians of CUDA-event
timings. The floor is bytes / the device's measured copy bandwidth (reads + writes of a 1 GiB
device-to-device copy), with two byte counts:

- ``bytes_min``: what the step must move once: the active states (h read for the W_h GEMM,
  g written and read, h_prev read, new h written: 5 B W d x 4 bytes), the per-node scalars
  over [B, N] that the sort-free select needs (slot map, alpha, candidate flag, score written
  and read: about 26 B N bytes) and the graph tables (N K x 8 bytes);
- ``bytes_gather``: plus every gathered message row from HBM (no cache reuse): 4 d bytes per
  edge out of the active set.

``--config paper`` builds the paper's geometry (D = 3, that of the committed H100 rows; the
default model has D = 8), ``--variants MASK`` also times the fused step with those
``kernels.step.TUNING`` switches on. Writes JSON to ``--out`` (default ``step_results.json``
here); exits with a message without CUDA, unless ``--cpu-smoke``: every code path once under
the Triton interpreter at small sizes, to check the script (its times mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import (  # noqa: E402
    BATCH,
    CLASSES,
    FEAT,
    HIDDEN,
    copy_bandwidth,
    cuda_time,
    inference_table,
    model_config,
    step_setting,
)


def run(
    n: int,
    k: int,
    repeats: int,
    bw: float,
    profile: bool = False,
    train: bool = False,
    tune: bool = False,
    variants: tuple[str, ...] = (),
    config: str | None = None,
    batch: int = BATCH,
) -> dict:
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"  # the CPU (Triton interpreter) only for --cpu-smoke
    from rsgn import ops
    from rsgn.backends import get_backend
    from rsgn.backends.triton.fused import graph_tables
    from rsgn.backends.triton.primitives import kernel_table
    from rsgn.model import RSGN

    torch.manual_seed(0)
    cfg = model_config(n, k, config)
    t0 = time.perf_counter()
    model = RSGN(FEAT, CLASSES, cfg).to(dev)
    row: dict = {
        "n_nodes": n,
        "k_in": k,
        "batch": batch,
        "hidden": HIDDEN,
        "k_active": cfg.k_active,
        "config": config or "default",
        "d_space": cfg.d_space,
        "build_s": time.perf_counter() - t0,
    }
    x, graph, st, params, kw = step_setting(model, cfg, batch, dev)
    ref = ops.TABLE
    with torch.no_grad():
        bsz, width = st.ids.shape
        act = st.ids[st.valid]
        deg = (graph.out_ptr[1:] - graph.out_ptr[:-1])[act]
        edges = int(deg.sum())
        row["active_nodes"] = int(st.valid.sum())
        row["active_edges"] = edges
        bytes_min = 5 * bsz * width * HIDDEN * 4 + 26 * bsz * n + n * graph.in_idx.shape[1] * 8
        bytes_gather = bytes_min + edges * HIDDEN * 4
        row["bytes_min"], row["bytes_gather"] = bytes_min, bytes_gather
        row["floor_min_s"], row["floor_gather_s"] = bytes_min / bw, bytes_gather / bw
        fused = kernel_table(tables=graph_tables(graph))
        ref_out = ref.step(st, graph, *params, **kw)
        fus_out = fused.step(st, graph, *params, **kw)
        row["ids_equal"] = bool(torch.equal(ref_out.ids, fus_out.ids))
        sel = []
        for o in (ref_out, fus_out):
            m = torch.zeros(bsz, n, dtype=torch.bool, device=dev)
            m.scatter_(1, o.ids, o.valid)
            sel.append(m)
        # winners in both / winners of the reference (< 1 only through near-ties at the cap)
        row["winner_agreement"] = float((sel[0] & sel[1]).sum() / sel[0].sum().clamp_min(1))
        row["max_abs_h_err"] = float((ref_out.h - fus_out.h).abs().max())
        for name, tab in (
            ("torch", ref),
            ("triton_unfused", kernel_table(fused=False)),
            ("triton_fused", fused),
        ):
            try:
                row[f"{name}_s"] = cuda_time(
                    lambda tab=tab: tab.step(st, graph, *params, **kw), repeats, warmup=2
                )
            except torch.cuda.OutOfMemoryError:
                row[f"{name}_s"] = "OOM"
            if cuda:
                torch.cuda.empty_cache()
        from rsgn.kernels import step as kstep

        for variant in variants:  # switches of kernels.step.TUNING turned on together, A/B
            base = dict(kstep.TUNING)
            kstep.TUNING.update({sw: True for sw in variant.split("+")})
            try:
                v_out = fused.step(st, graph, *params, **kw)
                row[f"{variant}_ids_equal_fused"] = bool(torch.equal(v_out.ids, fus_out.ids))
                row[f"{variant}_max_abs_h_err"] = float((ref_out.h - v_out.h).abs().max())
                row[f"triton_fused_{variant}_s"] = cuda_time(
                    lambda: fused.step(st, graph, *params, **kw), repeats, warmup=2
                )
            finally:
                kstep.TUNING.clear()
                kstep.TUNING.update(base)
        if tune:
            from itertools import product

            base = dict(kstep.TUNING)
            row["tuning"] = []
            for bb, bn, nw in product((1, 4, 8, 16), (16, 32), (4, 8)):
                kstep.TUNING.update(BB=bb, BLOCK_N=bn, num_warps=nw)
                t = cuda_time(lambda: fused.step(st, graph, *params, **kw), repeats, warmup=2)
                row["tuning"].append({"BB": bb, "BLOCK_N": bn, "num_warps": nw, "step_s": t})
            kstep.TUNING.update(base)
            best = min(row["tuning"], key=lambda r: r["step_s"])
            print(f"tuning N={n} k={k}: best {best}", flush=True)
        try:  # the fused step never syncs with the host, so it can be one CUDA graph
            if not cuda:
                raise RuntimeError("no CUDA")
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    fused.step(st, graph, *params, **kw)
            torch.cuda.current_stream().wait_stream(side)
            cg = torch.cuda.CUDAGraph()
            with torch.cuda.graph(cg):
                out_g = fused.step(st, graph, *params, **kw)
            row["triton_fused_graph_s"] = cuda_time(cg.replay, repeats, warmup=2)
            row["graph_ids_equal_fused"] = bool(torch.equal(out_g.ids, fus_out.ids))
            del cg
        except Exception as exc:  # noqa: BLE001 - recorded, not hidden
            row["triton_fused_graph_s"] = f"failed: {exc!r}"[:300]
        if profile and cuda:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as prof

            with prof(activities=[ProfilerActivity.CUDA]) as pr:
                for _ in range(3):
                    fused.step(st, graph, *params, **kw)
                torch.cuda.synchronize()
            table = pr.key_averages().table(sort_by="cuda_time_total", row_limit=12)
            print(f"--- fused step kernels, N={n}, k={k} (3 steps)\n{table}", flush=True)
    if train:
        import torch.nn.functional as F

        y = torch.randint(0, CLASSES, (batch,), device=dev)
        for name in ("triton", "torch"):
            table = get_backend(name).ops
            infer_table = inference_table(name, graph)
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()

            def tstep(table=table):
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x, ops_table=table).logits, y).backward()

            def infer(infer_table=infer_table):
                with torch.no_grad():
                    model(x, ops_table=infer_table, graph=graph)

            try:
                row[f"e2e_{name}_train_step_s"] = cuda_time(tstep, max(2, repeats // 3))
                if cuda:
                    peak = torch.cuda.max_memory_allocated() / 2**30
                    row[f"e2e_{name}_train_peak_GiB"] = peak
                row[f"e2e_{name}_inference_s"] = cuda_time(infer, max(2, repeats // 3))
            except torch.cuda.OutOfMemoryError:
                row[f"e2e_{name}_train_step_s"] = "OOM"
            model.zero_grad(set_to_none=True)
    f = row.get("triton_fused_s")
    if isinstance(f, float):
        row["fused_over_floor_min"] = f / row["floor_min_s"]
        row["fused_over_floor_gather"] = f / row["floor_gather_s"]
        row["fused_bandwidth_min_bytes_per_s"] = bytes_min / f
        fg = row.get("triton_fused_graph_s")
        if isinstance(fg, float):
            row["graph_over_floor_gather"] = fg / row["floor_gather_s"]
            if isinstance(row.get("torch_s"), float):
                row["speedup_graph_vs_torch"] = row["torch_s"] / fg
        for other in ("torch", "triton_unfused"):
            if isinstance(row.get(f"{other}_s"), float):
                row[f"speedup_vs_{other}"] = row[f"{other}_s"] / f
    return row


def main() -> None:
    from rsgn.checkpoint import atomic_write_bytes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 65536, 1 << 20])
    ap.add_argument("--ks", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", type=Path, default=HERE / "step_results.json")
    ap.add_argument("--profile", action="store_true", help="print the fused step's kernel table")
    ap.add_argument("--train", action="store_true", help="also time whole train/inference steps")
    ap.add_argument("--tune", action="store_true", help="time the scores kernel's launch variants")
    ap.add_argument("--config", default=None, help="model config (default: the package's; paper)")
    ap.add_argument("--batch", type=int, default=BATCH, help="samples per step (64)")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=[],
        metavar="SWITCH[+SWITCH]",
        help="also time the fused step with these kernels.step.TUNING switches on "
        "(MASK, STORE, MASK+STORE)",
    )
    ap.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="without CUDA: run every code path once at the given (small) sizes under the "
        "Triton interpreter, to check the script; times are meaningless",
    )
    args = ap.parse_args()
    if args.cpu_smoke and not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are imported
    from rsgn.kernels.step import TUNING

    for variant in args.variants:
        bad = [sw for sw in variant.split("+") if TUNING.get(sw) is not False]
        if bad:
            switches = [k for k, v in TUNING.items() if v is False]
            ap.error(f"--variants: {', '.join(bad)} is not an off switch of TUNING {switches}")
    smoke = args.cpu_smoke and not torch.cuda.is_available()
    if not torch.cuda.is_available() and not smoke:
        sys.exit("step_bench.py needs a CUDA GPU (none found; --cpu-smoke checks the script)")
    import triton

    bw = copy_bandwidth()
    out = {
        "device": "cpu (Triton interpreter, --cpu-smoke)"
        if smoke
        else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "copy_bandwidth_bytes_per_s": bw,
        "rows": [],
    }
    for n in args.sizes:
        for k in args.ks:
            out["rows"].append(
                run(
                    n,
                    k,
                    args.repeats,
                    bw,
                    profile=args.profile,
                    train=args.train,
                    tune=args.tune,
                    variants=tuple(args.variants),
                    config=args.config,
                    batch=args.batch,
                )
            )
            print(json.dumps(out["rows"][-1]), flush=True)
            atomic_write_bytes(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
