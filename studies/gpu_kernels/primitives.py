"""Hyperbolic-native primitives, plain vs primitive: accuracy (vs float64) and speed (GPU).

    python studies/gpu_kernels/primitives.py                  # GPU: accuracy + timings (< 3 min)
    python studies/gpu_kernels/primitives.py --cpu-accuracy   # no GPU: accuracy only, small sizes,
                                                              # Triton interpreter
    python studies/gpu_kernels/primitives.py --out path.json  # default: primitives.json here

Primitives (kernels in ``rsgn.kernels``):

- ``lorentz``: Lorentz-GEMM kNN candidate filter + exact re-rank vs the exact brute force
  (accurate 2-asinh distance to every point). Accuracy = recall@k of the candidate set (the
  re-rank is exact, so kNN recall = candidate recall) on clustered points at centre radius r
  (hyperbolic cluster spread 0.5), for oversample factors and GEMM precisions.
- ``lut``: exp(-d/tau) from a table (linear interpolation) vs ``tl.exp``; max abs/rel error vs
  float64 as a function of table size, forward and backward (table slope).
- ``lns``: Möbius addition in a logarithmic number system vs plain float32, vs float64 at radii
  up to 0.9999 (relative Euclidean error and hyperbolic distance to the float64 result).
- ``tanh``: the fused soft-threshold gate ``sigmoid((alpha + gamma |h~| - theta) / T)`` with
  the PTX ``tanh.approx.f32`` vs the exact tanh; max abs error vs float64, and the time of both
  (fast path on CUDA only; elsewhere the exact path alone is measured for accuracy).

Timings: median of ``triton.testing.do_bench`` (CUDA events) in ms. Without CUDA the script runs
the accuracy part only (``TRITON_INTERPRET=1`` is set before triton is imported).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

CPU_MODE = "--cpu-accuracy" in sys.argv or not torch.cuda.is_available()
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402
from prims import lns, lorentz, lut  # noqa: E402  (study-only kernels, next to this script)

from rsgn import geometry  # noqa: E402
from rsgn.kernels import gate  # noqa: E402

HERE = Path(__file__).resolve().parent
DEV = "cuda" if torch.cuda.is_available() else "cpu"
TIMING = DEV == "cuda" and not CPU_MODE
SIZES = {
    "cpu": {
        "gate_rows": 4096,
        "knn_n": 1024,
        "knn_q": 64,
        "knn_clusters": 4,
        "lut_n": 20000,
        "mobius_acc": 256,
    },
    "gpu": {
        "knn_n": 65536,
        "knn_q": 4096,
        "knn_clusters": 64,
        "lut_n": 1 << 22,
        "lut_edges": (64, 65536, 16),
        "mobius_acc": 1 << 16,
        "mobius_time": 1 << 20,
        "gate_rows": 64 * 65536 // 2,
    },
}


def _bench(fn, warmup: int = 10, rep: int = 40) -> float | None:
    """Median ms (CUDA events) or None when not timing."""
    if not TIMING:
        return None
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))


def _fmt(v, spec=".2e") -> str:
    return "-" if v is None else format(v, spec)


# ------------------------------------------------------------------------------ data
def clustered_points(n: int, d: int, r: float, n_clusters: int, spread: float = 0.5, seed=0):
    """n points in ``n_clusters`` clusters whose centres sit at Euclidean radius r; each point is
    centre ⊕ expmap0(u), |u| ~ spread/2 (hyperbolic spread ~ spread). Built in float64 (a =
    1 - |x|^2 there), returned as float32 (x, a) on DEV."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n_clusters, d, dtype=torch.float64, generator=g)
    c = c / c.norm(dim=1, keepdim=True) * r
    c = c.repeat_interleave(math.ceil(n / n_clusters), 0)[:n]
    u = torch.randn(n, d, dtype=torch.float64, generator=g) * (spread / 2 / math.sqrt(d))
    x = geometry.mobius_add(c, geometry.expmap0(u))
    a = 1.0 - (x * x).sum(1)
    return x.float().to(DEV), a.float().to(DEV)


def _round_tf32(t: torch.Tensor) -> torch.Tensor:
    """Emulate TF32 inputs (10 explicit mantissa bits, round to nearest) on float32."""
    b = t.contiguous().view(torch.int32)
    b = (b + 0x1000) & ~0x1FFF
    return b.view(torch.float32)


# ------------------------------------------------------------------------------ Lorentz
def _time_lorentz(xq, aq, x, a, k: int) -> dict:
    """Median ms of the plain exact kNN and of the Lorentz filter variants."""
    row = {
        "exact": _bench(lambda: lorentz.knn(xq, aq, x, a, k, filter="exact")),
        "exact_matrix": _bench(
            lambda: lorentz.knn(xq, aq, x, a, k, filter="exact", candidates="gemm")
        ),
    }
    for name, cands, o, prec in (
        ("fused_os2", "fused", 2, "ieee"),
        ("fused_os4", "fused", 4, "ieee"),
        ("gemm_os2", "gemm", 2, "ieee"),
        ("torch_os2", "torch", 2, "ieee"),
        ("fused_os2_tf32", "fused", 2, "tf32"),
        ("fused_os2_fp64", "fused", 2, "fp64"),
        ("torch_os2_fp64", "torch", 2, "fp64"),
    ):
        row[name] = _bench(
            lambda c=cands, o=o, p=prec: lorentz.knn(
                xq, aq, x, a, k, oversample=o, candidates=c, precision=p
            )
        )
    row["candidates_only_fused_os2"] = _bench(
        lambda: lorentz.lorentz_candidates(xq, aq, x, a, 2 * k, candidates="fused")
    )
    row["exact_distance_matrix_only"] = _bench(lambda: lorentz.exact_distances(xq, aq, x, a))
    return row


def study_lorentz(cpu: bool) -> dict:
    z = SIZES["cpu" if cpu else "gpu"]
    n, q, k, n_clusters = z["knn_n"], z["knn_q"], 16, z["knn_clusters"]
    dims = (3, 8, 16, 32)
    radii = (0.0, 0.9, 0.99, 0.999, 0.9999)
    oversamples = (1, 1.5, 2, 4, 8)
    out: dict = {
        "setup": {
            "N": n,
            "queries": q,
            "k": k,
            "clusters": n_clusters,
            "cluster_spread_hyperbolic": 0.5,
            "truth": "float64 brute force" if cpu else "float32 exact filter (2-asinh)",
        },
        "recall": [],
        "timing_ms": [],
    }
    print(f"\n[lorentz] recall@{k} of the GEMM candidate set, N={n}, Q={q}, {n_clusters} clusters")
    print("  D  radius  precision   " + "  ".join(f"os={o:<4}" for o in oversamples))
    for d in dims:
        for r in radii:
            x, a = clustered_points(n, d, r, n_clusters, seed=d)
            xq, aq = x[:q], a[:q]
            si = torch.arange(q, device=DEV)
            if cpu:
                ti, _ = lorentz.knn_reference(xq, aq, x, a, k, self_index=si)
            else:
                ti, _ = lorentz.knn(
                    xq, aq, x, a, k, filter="exact", candidates="gemm", self_index=si
                )
            precs = ["ieee", "tf32", "fp64"]
            for prec in precs:
                if cpu and prec == "tf32":  # the interpreter ignores input_precision: emulate
                    lq = _round_tf32(lorentz.to_lorentz(xq, aq, negate_time=True))
                    ly = _round_tf32(lorentz.to_lorentz(x, a))
                    s = lq @ ly.T
                    s[torch.arange(q), si] = float("-inf")
                    tag = "tf32(emul)"
                else:
                    s = lorentz.lorentz_scores(xq, aq, x, a, precision=prec, self_index=si)
                    tag = prec
                rec = []
                for o in oversamples:
                    m = min(math.ceil(k * o), n)
                    cand = torch.topk(s, m, dim=1).indices
                    rr = lorentz.candidate_recall(cand, ti)
                    rec.append((float(rr.mean()), float(rr.min())))
                del s
                out["recall"].append(
                    {
                        "d_space": d,
                        "radius": r,
                        "max_radius": float(x.norm(dim=1).max()),
                        "precision": tag,
                        "oversample": list(oversamples),
                        "recall_mean": [v[0] for v in rec],
                        "recall_min": [v[1] for v in rec],
                    }
                )
                print(f"  {d:<2} {r:<7} {tag:<11} " + "  ".join(f"{v[0]:.3f}  " for v in rec))
            # end to end (fused filter + Triton re-rank) equals the candidate recall
            if cpu and d == 16 and r in (0.0, 0.999):
                sub = 16  # the fused top-M kernel is slow under the interpreter
                idx, _ = lorentz.knn(
                    xq[:sub],
                    aq[:sub],
                    x,
                    a,
                    k,
                    oversample=2,
                    candidates="fused",
                    self_index=si[:sub],
                )
                e2e = float((idx[:, :, None] == ti[:sub, None, :]).any(-1).double().mean())
                out["recall"][-3]["knn_fused_os2_recall_first16"] = e2e
    if TIMING:
        print(f"\n[lorentz] kNN time (ms), N={n}, Q={q}, k={k}, interior points (radius 0.9)")
        print(
            "  D   exact fused  exact matrix  fused os2  fused os4  gemm os2  torch os2  "
            "fused tf32  fused fp64  torch fp64"
        )
        for d in (3, 16, 32):
            x, a = clustered_points(n, d, 0.9, n_clusters, seed=d)
            row = {"d_space": d} | _time_lorentz(x[:q], a[:q], x, a, k)
            out["timing_ms"].append(row)
            print(
                f"  {d:<3} {_fmt(row['exact'], '9.3f')}    {_fmt(row['exact_matrix'], '9.3f')}     "
                f"{_fmt(row['fused_os2'], '8.3f')}  "
                f"{_fmt(row['fused_os4'], '8.3f')}  {_fmt(row['gemm_os2'], '8.3f')}  "
                f"{_fmt(row['torch_os2'], '8.3f')}  {_fmt(row['fused_os2_tf32'], '8.3f')}    "
                f"{_fmt(row['fused_os2_fp64'], '8.3f')}    {_fmt(row['torch_os2_fp64'], '8.3f')}"
            )
    return out


# ------------------------------------------------------------------------------ LUT
def study_lut(cpu: bool) -> dict:
    sizes = (64, 256, 1024, 4096, 16384, 65536)
    tau = 1.0
    n_acc = SIZES["cpu" if cpu else "gpu"]["lut_n"]
    g = torch.Generator().manual_seed(1)
    d = (torch.rand(n_acc, dtype=torch.float64, generator=g) * lut.DEFAULT_U_MAX * tau).float()
    d = d.to(DEV)
    d64 = d.double()
    ref = torch.exp(-d64 / tau)
    dref = -ref / tau
    out: dict = {"setup": {"tau": tau, "u_max": lut.DEFAULT_U_MAX, "n": n_acc}, "accuracy": []}
    print(f"\n[lut] exp(-d/tau) float32 vs float64 (d uniform in [0, {lut.DEFAULT_U_MAX}] tau)")
    print("  mode     size    fwd max abs  fwd max rel  bwd(slope) abs / rel  bwd(value) abs / rel")
    for mode, size in [("exp", None)] + [("lut", s) for s in sizes]:
        kw = {"mode": mode} | ({"size": size} if size else {})
        row = {"mode": mode, "size": size}
        for grad in ("slope", "value"):
            dd = d.clone().requires_grad_(True)
            y = lut.exp_decay(dd, tau, grad=grad, **kw)
            (gd,) = torch.autograd.grad(y.sum(), dd)
            y = y.detach().double()
            row["fwd_max_abs"] = float((y - ref).abs().max())
            row["fwd_max_rel"] = float(((y - ref).abs() / ref).max())
            row[f"bwd_{grad}_max_abs"] = float((gd.double() - dref).abs().max())
            row[f"bwd_{grad}_max_rel"] = float(((gd.double() - dref).abs() / dref.abs()).max())
        out["accuracy"].append(row)
        print(
            f"  {mode:<6} {str(size or '-'):>6}   {row['fwd_max_abs']:.2e}     "
            f"{row['fwd_max_rel']:.2e}     {row['bwd_slope_max_abs']:.2e} / "
            f"{row['bwd_slope_max_rel']:.2e}   {row['bwd_value_max_abs']:.2e} / "
            f"{row['bwd_value_max_rel']:.2e}"
        )
    if TIMING:
        shape = SIZES["gpu"]["lut_edges"]
        e = torch.rand(shape, device=DEV) * 10
        go = torch.ones_like(e)
        nbytes = e.numel() * 4
        out["timing_ms"] = []
        print(f"\n[lut] time (ms) over {shape} = {e.numel():,} edges (float32)")
        print("  mode    size   fwd     GB/s   fwd+bwd")
        for mode, size in [("exp", 4096), ("lut", 256), ("lut", 4096), ("lut", 65536)]:
            fwd = _bench(lambda m=mode, s=size: lut.exp_decay_forward(e, tau, mode=m, size=s))
            bwd = _bench(
                lambda m=mode, s=size: (
                    lut.exp_decay_forward(e, tau, mode=m, size=s),
                    lut.exp_decay_backward(e, go, tau, mode=m, size=s),
                )
            )
            gbs = 2 * nbytes / (fwd * 1e-3) / 1e9
            out["timing_ms"].append(
                {
                    "mode": mode,
                    "size": size if mode == "lut" else None,
                    "fwd": fwd,
                    "fwd_GBps": gbs,
                    "fwd_bwd": bwd,
                }
            )
            print(
                f"  {mode:<6} {size if mode == 'lut' else '-':>6}  {fwd:.3f}  {gbs:6.0f}  {bwd:.3f}"
            )
    return out


# ------------------------------------------------------------------------------ LNS
def _hdist64(z: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """d_H between a computed point and the float64 result, evaluated in float64."""
    z, ref = z.double(), ref.double()
    az = (1 - (z * z).sum(-1)).clamp_min(1e-300)
    ar = (1 - (ref * ref).sum(-1)).clamp_min(1e-300)
    return 2 * torch.asinh((z - ref).norm(dim=-1) / torch.sqrt(az * ar))


def _time_mobius(x: torch.Tensor, y: torch.Tensor) -> dict:
    row = {"torch": _bench(lambda: geometry.mobius_add(x, y))}
    for mode in ("plain", "lns", "lns_table"):
        row[mode] = _bench(lambda m=mode: lns.mobius_add(x, y, mode=m))
    return row


def study_tanh(cpu: bool) -> dict:
    """Gate with the PTX fast tanh vs the exact one: accuracy vs float64, and time on CUDA."""
    m = SIZES["cpu" if cpu else "gpu"]["gate_rows"]
    d, gamma, temp = 128, 0.5, 0.7
    g = torch.Generator().manual_seed(2)
    h = torch.randn(m, d, generator=g, dtype=torch.float64) * 0.3
    a = torch.rand(m, generator=g, dtype=torch.float64)
    th = torch.randn(m, generator=g, dtype=torch.float64)
    ref = gate.soft_threshold_reference(a, h, th, gamma=gamma, temperature=temp)
    h32, a32, th32 = (t.float().to(DEV) for t in (h, a, th))
    usable = gate.fast_tanh_usable(h32.device)
    out: dict = {"setup": {"rows": m, "d": d, "fast_usable": usable}, "accuracy": {}}
    print(f"\n[tanh] gate over {m:,} x {d} float32; PTX fast tanh usable here: {usable}")
    for fast in (False, True) if usable else (False,):
        y, _ = gate.soft_threshold_forward(a32, h32, th32, gamma, temp, fast=fast)
        err = float((y.double().cpu() - ref).abs().max())
        out["accuracy"]["fast" if fast else "exact"] = {"max_abs_vs_float64": err}
        print(f"  {'fast' if fast else 'exact'}: max abs error vs float64 {err:.2e}")
    if TIMING and usable:
        nbytes = m * d * 4
        out["timing_ms"] = {}
        for fast in (False, True):
            t = _bench(lambda f=fast: gate.soft_threshold_forward(a32, h32, th32, gamma, temp, f))
            gbs = nbytes / (t * 1e-3) / 1e9
            out["timing_ms"]["fast" if fast else "exact"] = {"fwd": t, "read_GBps": gbs}
            print(f"  {'fast' if fast else 'exact'}: {t:.3f} ms ({gbs:.0f} GB/s of h~ read)")
    return out


def study_lns(cpu: bool) -> dict:
    m_acc = SIZES["cpu" if cpu else "gpu"]["mobius_acc"]
    radii = (0.5, 0.9, 0.99, 0.999, 0.9999)
    configs = [("x at r, y interior", 16), ("x at r, y interior", 3), ("x and y at r", 16)]
    modes = [
        ("plain", None),
        ("lns", None),
        ("lns_table", 256),
        ("lns_table", 1024),
        ("lns_table", 4096),
    ]
    out: dict = {"setup": {"pairs": m_acc, "y_interior": "expmap0(0.4 N(0, I))"}, "accuracy": []}
    print(f"\n[lns] Möbius addition float32 vs float64 on the same inputs ({m_acc} pairs)")
    print(
        "  config                D  radius   d_H floor  "
        + "  ".join(f"{m + (str(s) if s else ''):<14}" for m, s in modes)
        + "   (max rel | max d_H)"
    )
    g = torch.Generator().manual_seed(2)
    for cfg, d in configs:
        for r in radii:
            v = torch.randn(m_acc, d, dtype=torch.float64, generator=g)
            x = v / v.norm(dim=1, keepdim=True) * r
            if cfg.startswith("x and y"):
                w = torch.randn(m_acc, d, dtype=torch.float64, generator=g)
                y = w / w.norm(dim=1, keepdim=True) * r
            else:
                y = geometry.expmap0(torch.randn(m_acc, d, dtype=torch.float64, generator=g) * 0.4)
            x32, y32 = x.float().to(DEV), y.float().to(DEV)
            ref = lns.mobius_add_reference(x32, y32)
            floor = float(_hdist64(ref.float(), ref).max())  # float32 representation of the result
            cells = [f"{floor:.1e}"]
            for mode, size in modes:
                kw = {"table_size": size} if size else {}
                z = lns.mobius_add(x32, y32, mode=mode, **kw)
                rel = float(((z.double() - ref).norm(dim=1) / ref.norm(dim=1)).max())
                hd = float(_hdist64(z, ref).max())
                escaped = float((z.double().norm(dim=1) >= 1).double().mean())
                out["accuracy"].append(
                    {
                        "config": cfg,
                        "d": d,
                        "radius": r,
                        "mode": mode,
                        "table_size": size,
                        "max_rel": rel,
                        "max_hyperbolic_err": hd,
                        "hyperbolic_floor_fp32_result": floor,
                        "fraction_outside_ball": escaped,
                        "ref_max_radius": float(ref.norm(dim=1).max()),
                    }
                )
                cells.append(f"{rel:.1e}|{hd:.1e}")
            print(
                f"  {cfg:<21} {d:<2} {r:<7}  {cells[0]:<9}  "
                + "  ".join(f"{c:<14}" for c in cells[1:])
            )
    if TIMING:
        out["timing_ms"] = []
        print(f"\n[lns] time (ms), {SIZES['gpu']['mobius_time']:,} pairs, float32")
        print("  D   torch(geometry)  plain   lns    lns_table1024")
        for d in (3, 16):
            mt = SIZES["gpu"]["mobius_time"]
            x = geometry.expmap0(torch.randn(mt, d, device=DEV))
            y = geometry.expmap0(torch.randn(mt, d, device=DEV) * 0.4)
            row = {"d": d} | _time_mobius(x, y)
            out["timing_ms"].append(row)
            print(
                f"  {d:<3} {row['torch']:.3f}           {row['plain']:.3f}  {row['lns']:.3f}  "
                f"{row['lns_table']:.3f}"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "primitives.json"))
    ap.add_argument(
        "--cpu-accuracy",
        action="store_true",
        help="accuracy only at small sizes (implied without CUDA)",
    )
    ap.add_argument(
        "--only",
        choices=("lorentz", "lut", "lns", "tanh"),
        action="append",
        help="run only these studies (repeatable)",
    )
    args = ap.parse_args()
    cpu = CPU_MODE
    torch.manual_seed(0)
    t0 = time.time()
    res: dict = {
        "meta": {
            "mode": "cpu-accuracy (Triton interpreter)"
            if DEV == "cpu"
            else ("gpu accuracy only" if cpu else "gpu accuracy + timing"),
            "device": torch.cuda.get_device_name(0)
            if DEV == "cuda"
            else platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "triton": triton.__version__,
            "interpreter": os.environ.get("TRITON_INTERPRET", "0") == "1",
        }
    }
    studies = {"lorentz": study_lorentz, "lut": study_lut, "lns": study_lns, "tanh": study_tanh}
    for name in args.only or list(studies):
        t = time.time()
        res[name] = studies[name](cpu)
        res[name]["wall_s"] = round(time.time() - t, 1)
        print(f"  ({name}: {res[name]['wall_s']} s, total {time.time() - t0:.0f} s)", flush=True)
    res["meta"]["wall_s"] = round(time.time() - t0, 1)
    out = Path(args.out)
    if args.only and out.exists():  # a partial run updates the sections it ran
        old = json.loads(out.read_text())
        old.update({k: v for k, v in res.items() if k != "meta"})
        old.setdefault("meta_partial_runs", []).append(res["meta"] | {"only": args.only})
        res = old
    from rsgn.checkpoint import atomic_write_bytes

    atomic_write_bytes(out, json.dumps(res, indent=1).encode())
    print(f"\nwrote {args.out} ({res['meta']['wall_s']} s)")


if __name__ == "__main__":
    main()
