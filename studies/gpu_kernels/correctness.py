"""Max errors of every Triton kernel against its torch reference at odd shapes, on whatever
runs here (CPU under TRITON_INTERPRET=1 without CUDA). Writes correctness.json.

    python studies/gpu_kernels/correctness.py
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402

from rsgn import geometry  # noqa: E402
from rsgn import selection as ref_sel  # noqa: E402
from rsgn.kernels import distance, gate, ignite, select, spmm  # noqa: E402

HERE = Path(__file__).resolve().parent
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _maxrel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float(((a - b).abs() / b.abs().clamp_min(1e-30)).max())


def _maxabs(a, b):
    return float((a.detach().double() - b.detach().double()).abs().max())


def main() -> None:
    torch.manual_seed(0)
    res: dict = {}
    for dt in (torch.float32, torch.float64):
        tag = str(dt).replace("torch.", "")
        n, d, e = 37, 13, 101
        x, a = geometry.expmap0_with_conformal(torch.randn(n, d, dtype=torch.float64) * 1.5)
        x = x.to(dt).to(DEV).requires_grad_(True)
        a = a.to(dt).to(DEV).requires_grad_(True)
        i, j = torch.randint(0, n, (e,), device=DEV), torch.randint(0, n, (e,), device=DEV)
        out = distance.pair_distance(x, a, i, j)
        ref = distance.pair_distance_reference(x, a, i, j)
        go = torch.randn_like(out)
        gx, ga = torch.autograd.grad(out, (x, a), go)
        rx, ra = torch.autograd.grad(ref, (x, a), go)
        res[f"distance/{tag}"] = {
            "fwd_max_rel": _maxrel(out, ref),
            "grad_x_max_abs": _maxabs(gx, rx),
            "grad_a_max_rel": _maxrel(ga, ra),
        }
        s, sa = geometry.expmap0_with_conformal(torch.randn(3, 7, 5, dtype=torch.float64))
        p, pa = geometry.expmap0_with_conformal(torch.randn(37, 5, dtype=torch.float64))
        s, sa, p, pa = (t.to(dt).to(DEV) for t in (s, sa, p, pa))
        dm, tk = ignite.ignite_min(s, sa, p, pa)
        rd, rt = ignite.ignite_min_reference(s, sa, p, pa)
        res[f"ignite/{tag}"] = {
            "fwd_max_rel": _maxrel(dm, rd),
            "argmin_mismatch": int((tk != rt).sum()),
        }
        cnt = torch.multinomial(torch.ones(11), e, replacement=True).bincount(minlength=11)
        src_ptr = torch.zeros(12, dtype=torch.int64)
        src_ptr[1:] = cnt.cumsum(0)
        src_ptr = src_ptr.to(DEV)
        dst = torch.randint(0, 37, (e,), device=DEV)
        w = torch.randn(e, dtype=dt, device=DEV, requires_grad=True)
        g = torch.randn(11, d, dtype=dt, device=DEV, requires_grad=True)
        b = torch.randn(d, dtype=dt, device=DEV, requires_grad=True)
        o = spmm.edge_spmm(dst, src_ptr, w, g, b, 37)
        r = spmm.edge_spmm_reference(dst, src_ptr, w, g, b, 37)
        go = torch.randn_like(o)
        gg = torch.autograd.grad(o, (w, g, b), go)
        rg = torch.autograd.grad(r, (w, g, b), go)
        res[f"spmm/{tag}"] = {
            "fwd_max_abs": _maxabs(o, r),
            "grad_w_max_abs": _maxabs(gg[0], rg[0]),
            "grad_g_max_abs": _maxabs(gg[1], rg[1]),
        }
        ap = torch.rand(37, dtype=dt, device=DEV, requires_grad=True)
        h = torch.randn(37, d, dtype=dt, device=DEV, requires_grad=True)
        th = torch.randn(37, dtype=dt, device=DEV, requires_grad=True)
        o = gate.soft_threshold(ap, h, th, gamma=0.3, temperature=0.7)
        r = gate.soft_threshold_reference(ap, h, th, gamma=0.3, temperature=0.7)
        go = torch.randn_like(o)
        gg = torch.autograd.grad(o, (ap, h, th), go)
        rg = torch.autograd.grad(r, (ap, h, th), go)
        res[f"soft_threshold/{tag}"] = {
            "fwd_max_abs": _maxabs(o, r),
            "grad_max_abs": max(_maxabs(u, v) for u, v in zip(gg, rg, strict=True)),
        }
    mism = 0
    for b_, n_, k_ in [(3, 37, 5), (2, 301, 17), (8, 1000, 50)]:
        sc = torch.round(torch.randn(b_, n_) * 4) / 4  # heavy ties
        got = select.radix_select_mask(sc.to(DEV), k_).cpu()
        mism += int((got != ref_sel.radix_select_mask(sc, k_)).sum())
    res["radix_select"] = {"mask_mismatches": mism}
    out = {
        "device": torch.cuda.get_device_name() if DEV == "cuda" else platform.processor() or "cpu",
        "interpreter": os.environ.get("TRITON_INTERPRET") == "1",
        "torch": torch.__version__,
        "triton": triton.__version__,
        "results": res,
    }
    from rsgn.checkpoint import atomic_write_bytes

    atomic_write_bytes(HERE / "correctness.json", (json.dumps(out, indent=1) + "\n").encode())
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
