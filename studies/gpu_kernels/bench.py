"""GPU benchmark of the triton target against the torch target and the dense formulation.

    python studies/gpu_kernels/bench.py                 # N = 4k, 65k, 1M; k = 16, 32, 64
    python studies/gpu_kernels/bench.py --quick         # N = 4k only, k = 16

Per (N, k): batch 64, sequence 64, 32 input features, hidden 128, 5% active (the model's
default cap), paper defaults otherwise. Measured with CUDA events:

- train step (forward + cross-entropy + backward, each target's training op table) and
  inference (the forward on a built graph with :func:`inference_table`) time per batch on the
  ``triton`` and ``torch`` targets, and the dense ``rsgn.dense.DenseRSGN``
  (inference and train step; recorded as "OOM" where it does not fit);
- the message-sum kernel alone on a propagate-sized problem (the active set's out-edges): its
  achieved bandwidth (bytes it must move, gathers counted from HBM, / time) against the
  device's measured copy bandwidth (a 1 GiB device-to-device copy: the roofline floor);
- energy per inference from the NVML total-energy counter (``pynvml``; "n/a" if missing).

Writes ``results.json`` (with the device name) next to this script. Exits with a message and
status 1 when there is no CUDA GPU: the numbers are GPU numbers only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
BATCH, SEQ, FEAT, HIDDEN, CLASSES = 64, 64, 32, 128, 20


def model_config(n: int, k: int, config: str | None = None):
    """The benchmarks' ModelConfig: ``config`` (None: the package default, a D = 8 ball;
    ``paper``: the paper preset, D = 3, the geometry of the 2026-11-22 H100 numbers, taken
    before the default moved to D = 8) with N nodes, k in-edges, hidden 128, no Hebbian pass."""
    from rsgn.config import apply_overrides, load_config

    sets = [f"model.n_nodes={n}", f"model.k_in={k}", f"model.d_hidden={HIDDEN}"]
    return apply_overrides(load_config(config), [*sets, "model.hebbian=false"]).model


def spark_points(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's sparks of ``x`` and their conformal factors (the forward's front end)."""
    from rsgn import ops

    w = model.weights()
    feats = ops.encode(x, w.enc_w, w.enc_b)
    return ops.spark_points(feats, w.spark_w1, w.spark_b1, w.spark_w2, w.spark_b2, w.spark_scale)


def inference_table(name: str, graph):
    """The op table an inference on the built ``graph`` runs on target ``name``: the torch
    reference, or the triton kernels with the fused step's graph tables bound to ``graph``
    (as a triton program binds them at prepare)."""
    from rsgn import ops

    if name == "torch":
        return ops.TABLE
    from rsgn.backends.triton.fused import graph_tables
    from rsgn.backends.triton.primitives import kernel_table

    return kernel_table(tables=graph_tables(graph))


def step_setting(model, cfg, batch: int, device: str):
    """The state the step benchmarks start from: random inputs of ``batch`` samples, the
    ignited active set with random states, then one reference step (a realistic active
    set). Returns (x, graph, state, step parameters, step options); no gradients."""
    from rsgn import ops
    from rsgn.state import ActiveState

    ref = ops.TABLE
    x = torch.randn(batch, SEQ, FEAT, device=device)
    kw = dict(
        gamma=cfg.gamma,
        temperature=1.0,
        inhibition=cfg.inhibition_strength,
        cap=cfg.k_active,
        eps=cfg.eps_active,
        method="radix",
    )
    params = (model.w_h.weight, model.w_h.bias, model.theta, model.ln.weight, model.ln.bias)
    with torch.no_grad():
        graph = model.build_graph(ref)
        sp, sa = spark_points(model, x)
        st = ref.ignite(
            sp, sa, graph, sigma=cfg.sigma_ign, eps=cfg.eps_active, cap=cfg.k_active, method="radix"
        )
        h0 = torch.randn(*st.ids.shape, cfg.d_hidden, device=device)  # any state will do
        h = st.alpha.unsqueeze(-1) * h0 * st.valid.unsqueeze(-1)
        st = ref.step(ActiveState(st.ids, st.valid, st.alpha, h), graph, *params, **kw)
    return x, graph, st, params, kw


def cuda_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median seconds per call of ``fn`` by CUDA events (wall clock without CUDA, for the
    scripts' CPU smoke runs, whose times mean nothing)."""
    for _ in range(warmup):
        fn()
    if not torch.cuda.is_available():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return times[len(times) // 2]


def copy_bandwidth() -> float:
    """Measured device-to-device copy bandwidth in bytes/s (reads + writes; host memory's
    without CUDA, 64 MiB)."""
    if not torch.cuda.is_available():
        src = torch.empty(1 << 24, dtype=torch.float32)
        dst = torch.empty_like(src)
        return 2 * src.numel() * 4 / cuda_time(lambda: dst.copy_(src), repeats=5, warmup=1)
    src = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    t = cuda_time(lambda: dst.copy_(src), repeats=10, warmup=3)
    return 2 * src.numel() * 4 / t


def nvml_energy_per_call(fn, calls: int):
    """Joules per call from the NVML total-energy counter, or 'n/a: reason'."""
    try:
        import pynvml
    except ImportError:
        return "n/a: pynvml not installed"
    try:
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        torch.cuda.synchronize()
        e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)  # millijoules
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        e1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        return (e1 - e0) / 1e3 / calls
    except Exception as exc:  # NVML errors: not supported on this device, permissions
        return f"n/a: {type(exc).__name__}: {exc}"


def spmm_bandwidth(model, table, x) -> dict:
    """The message-sum kernel alone on the first propagation step's edges (``table``: the
    triton op table, for the graph and the ignition)."""
    from rsgn.kernels.spmm import csr_spmm
    from rsgn.sparse import gather_out_edges

    with torch.no_grad():
        g = model.build_graph(table)
        sp, sa = spark_points(model, x)
        cfg = model.cfg
        st = table.ignite(
            sp,
            sa,
            g,
            sigma=cfg.sigma_ign,
            eps=cfg.eps_active,
            cap=cfg.k_active,
            method=cfg.selection,
        )
        bsz, width = st.ids.shape
        act_rows = st.valid.reshape(-1).nonzero(as_tuple=True)[0]
        act_ids = st.ids.reshape(-1)[act_rows]
        edges, owner = gather_out_edges(g.out_ptr, g.out_edge, act_ids)
        dst = (act_rows[owner] // width) * cfg.n_nodes + edges // g.in_idx.shape[1]
        uniq, inv = torch.unique(dst, return_inverse=True)
        order = torch.argsort(inv, stable=True)
        crow = torch.zeros(uniq.numel() + 1, dtype=torch.int64, device=x.device)
        crow[1:] = torch.bincount(inv, minlength=uniq.numel()).cumsum(0)
        col = act_rows[owner][order]
        val = g.w.reshape(-1)[edges][order].float()
        feats = torch.randn(bsz * width, HIDDEN, device=x.device)
        t = cuda_time(lambda: csr_spmm(crow, col, val, feats), repeats=20, warmup=3)
        ne, m = int(edges.numel()), int(uniq.numel())
        nbytes = ne * (HIDDEN * 4 + 8 + 4) + (m + 1) * 8 + m * HIDDEN * 4
        return {"edges": ne, "rows": m, "seconds": t, "bytes": nbytes, "bytes_per_s": nbytes / t}


def run_config(n: int, k: int, repeats: int, dense: bool, config: str | None = None) -> dict:
    import torch.nn.functional as F

    from rsgn.backends import get_backend
    from rsgn.dense import DenseRSGN
    from rsgn.model import RSGN

    torch.manual_seed(0)
    cfg = model_config(n, k, config)
    row: dict = {"n_nodes": n, "k_in": k, "batch": BATCH, "hidden": HIDDEN}
    row.update(config=config or "default", d_space=cfg.d_space)
    row["k_active"] = cfg.k_active
    t0 = time.perf_counter()
    model = RSGN(FEAT, CLASSES, cfg).cuda()
    row["build_s"] = time.perf_counter() - t0
    x = torch.randn(BATCH, SEQ, FEAT, device="cuda")
    y = torch.randint(0, CLASSES, (BATCH,), device="cuda")
    for name in ("triton", "torch"):
        table = get_backend(name).ops

        def step(table=table):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x, ops_table=table).logits, y).backward()

        try:
            row[f"{name}_train_step_s"] = cuda_time(step, repeats)
            with torch.no_grad():
                graph = model.build_graph(table)
                fixed = inference_table(name, graph)

                def infer(fixed=fixed, graph=graph):
                    with torch.no_grad():
                        model(x, ops_table=fixed, graph=graph)

                row[f"{name}_inference_s"] = cuda_time(infer, repeats)
                e_call = nvml_energy_per_call(infer, 3 * repeats)  # one call: a batch
                row[f"{name}_energy_J_per_inference"] = e_call
                if isinstance(e_call, float):  # per sample, like rsgn's modelled energy
                    row[f"{name}_energy_J_per_sample"] = e_call / BATCH
            row[f"{name}_peak_mem_GiB"] = torch.cuda.max_memory_allocated() / 2**30
        except torch.cuda.OutOfMemoryError:
            row[f"{name}_train_step_s"] = "OOM"
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        row["spmm"] = spmm_bandwidth(model, get_backend("triton").ops, x)
    except torch.cuda.OutOfMemoryError:
        row["spmm"] = "OOM"
    if dense:
        try:
            dm = DenseRSGN(FEAT, CLASSES, cfg).cuda()

            def dstep():
                dm.zero_grad(set_to_none=True)
                F.cross_entropy(dm(x), y).backward()

            def dinfer():
                with torch.no_grad():
                    dm(x)

            row["dense_inference_s"] = cuda_time(dinfer, repeats)
            row["dense_train_step_s"] = cuda_time(dstep, repeats)
            del dm
        except torch.cuda.OutOfMemoryError:
            row["dense_inference_s"] = row.get("dense_inference_s", "OOM")
            row["dense_train_step_s"] = "OOM"
        torch.cuda.empty_cache()
    else:
        row["dense_inference_s"] = row["dense_train_step_s"] = "skipped: N x N does not fit"
    for kind in ("train_step", "inference"):
        tri, ref, den = (row.get(f"{b}_{kind}_s") for b in ("triton", "torch", "dense"))
        if isinstance(tri, float):
            if isinstance(ref, float):
                row[f"speedup_{kind}_vs_torch"] = ref / tri
            if isinstance(den, float):
                row[f"speedup_{kind}_vs_dense"] = den / tri
    return row


def main() -> None:
    from rsgn.checkpoint import atomic_write_bytes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 4096, k = 16 only")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", help="node counts (default 4096 65536 1M)")
    ap.add_argument("--ks", type=int, nargs="+", help="in-degrees (default 16 32 64)")
    ap.add_argument("--config", default=None, help="model config (default: the package's; paper)")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit(
            "bench.py needs a CUDA GPU (none found): the timings, bandwidth and NVML energy it "
            "reports are GPU measurements. For CPU-interpreter correctness run "
            "studies/gpu_kernels/correctness.py."
        )
    import triton

    sizes = args.sizes or ([4096] if args.quick else [4096, 65536, 1 << 20])
    ks = args.ks or ([16] if args.quick else [16, 32, 64])
    out = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "copy_bandwidth_bytes_per_s": copy_bandwidth(),
        "rows": [],
    }
    for n in sizes:
        for k in ks:
            row = run_config(n, k, args.repeats, dense=n <= 65536, config=args.config)
            sp = row.get("spmm")
            if isinstance(sp, dict):
                sp["fraction_of_copy_bandwidth"] = (
                    sp["bytes_per_s"] / out["copy_bandwidth_bytes_per_s"]
                )
            out["rows"].append(row)
            print(json.dumps(row), flush=True)
            atomic_write_bytes(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
