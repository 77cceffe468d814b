"""Triton kernels (``rsgn.kernels``) against their torch references: forward and every gradient
over odd shapes and per-dtype tolerances; radix select exact (ties included).

Runs on the CPU under Triton's interpreter (``TRITON_INTERPRET=1`` is set here, before triton is
imported, when there is no CUDA); GPU-only paths are marked ``gpu`` and skip without CUDA.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

triton = pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
import triton.language as tl  # noqa: E402

from rsgn import geometry  # noqa: E402
from rsgn import selection as ref_sel  # noqa: E402
from rsgn.kernels import _common, distance, gate, ignite, select, spmm  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
# (dtype, atol, rtol) for values and gradients
TOL = {torch.float32: (2e-5, 2e-5), torch.float64: (1e-12, 1e-12)}
DTYPES = [torch.float32, torch.float64]


def _close(a, b, dtype, scale=1.0):
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(a, b, atol=atol * scale, rtol=rtol * scale)


def _points(n, d, dtype, spread=1.0):
    v = torch.randn(n, d, dtype=torch.float64) * spread
    x, a = geometry.expmap0_with_conformal(v)
    return x.to(dtype).to(DEV), a.to(dtype).to(DEV)


# ------------------------------------------------------------------------------ portable math
@triton.jit
def _math_kernel(x_ptr, tanh_ptr, asinh_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m, other=0.0)
    tl.store(tanh_ptr + offs, _common.tanh_gate(x, False), mask=m)
    tl.store(asinh_ptr + offs, _common.asinh(x), mask=m)


def test_portable_tanh_and_asinh_float32_accuracy():
    x = torch.cat(
        [torch.logspace(-9, 1.5, 60), -torch.logspace(-9, 1.5, 60), torch.zeros(1)]
    ).float()
    x = x.to(DEV)
    th, ash = torch.empty_like(x), torch.empty_like(x)
    _math_kernel[(1,)](x, th, ash, x.numel(), BLOCK=128)
    ref_t, ref_a = torch.tanh(x.double()), torch.asinh(x.double())
    rel_t = ((th.double() - ref_t).abs() / ref_t.abs().clamp_min(1e-30)).max()
    rel_a = ((ash.double() - ref_a).abs() / ref_a.abs().clamp_min(1e-30)).max()
    assert rel_t < 1e-6 and rel_a < 1e-6, (rel_t, rel_a)  # 2^-11 would fail: no fast path here


# ------------------------------------------------------------------------------ distance
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,e", [(37, 13, 101), (5, 3, 7)])
def test_distance_forward_and_grads(dtype, n, d, e):
    x, a = _points(n, d, dtype, spread=1.5)
    x.requires_grad_(True)
    a.requires_grad_(True)
    i = torch.randint(0, n, (e,), device=DEV)
    j = torch.randint(0, n, (e,), device=DEV)
    j[:2] = i[:2]  # self pairs: distance 0, finite (zero) gradient
    out = distance.pair_distance(x, a, i, j)
    ref = distance.pair_distance_reference(x, a, i, j)
    _close(out, ref, dtype)
    assert torch.all(out[:2] == 0)
    go = torch.randn_like(out)
    gx, ga = torch.autograd.grad(out, (x, a), go)
    rx, ra = torch.autograd.grad(ref, (x, a), go)
    assert torch.isfinite(gx).all() and torch.isfinite(ga).all()
    _close(gx, rx, dtype, scale=10)
    _close(ga, ra, dtype, scale=10)


def test_distance_float32_accurate_near_the_boundary():
    # pairs at radius 0.999 with separation 1e-3: the asinh form keeps ~2e-7 relative error
    d = 13
    v = torch.randn(17, d, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True) * geometry.MAX_TANGENT_NORM
    x64, a64 = geometry.expmap0_with_conformal(v)
    y64 = x64 + 1e-3 * torch.randn_like(x64) / d**0.5
    y64 = geometry.project(y64, max_radius=0.9995)
    pts = torch.cat([x64, y64])
    a_all = 1 - (pts * pts).sum(-1)
    i = torch.arange(17)
    j = i + 17
    exact = geometry.dist_from_parts(pts[i], pts[j], a_all[i], a_all[j])
    got = distance.pair_distance(pts.float().to(DEV), a_all.float().to(DEV), i.to(DEV), j.to(DEV))
    # the reference is evaluated on the float32-rounded inputs: formula error only
    p32, a32 = pts.float().double(), a_all.float().double()
    exact = geometry.dist_from_parts(p32[i], p32[j], a32[i], a32[j])
    rel = ((got.double().cpu() - exact).abs() / exact).max()
    assert rel < 1e-6, rel


# ------------------------------------------------------------------------------ ignite
@pytest.mark.parametrize("dtype", DTYPES)
def test_ignite_min_and_argmin(dtype):
    b, t, n, d = 3, 7, 37, 5
    s, sa = _points(b * t, d, dtype)
    s, sa = s.view(b, t, d), sa.view(b, t)
    s[:, 4], sa[:, 4] = s[:, 1], sa[:, 1]  # duplicated token: argmin must be the first
    x, a = _points(n, d, dtype)
    dmin, tok = ignite.ignite_min(s, sa, x, a)
    ref_d, ref_t = ignite.ignite_min_reference(s, sa, x, a)
    _close(dmin, ref_d, dtype)
    assert torch.equal(tok, ref_t)
    assert not (tok == 4).any()


# ------------------------------------------------------------------------------ select
def _tied_scores(b, n):
    x = torch.randn(b, n)
    x = torch.where(torch.rand(b, n) < 0.4, torch.round(x * 2) / 2, x)  # many exact ties
    x[0, ::3] = 0.5
    x[-1, :4] = -0.0
    x[-1, 4:8] = 0.0
    x[-1, 8] = float("-inf")
    return x


@pytest.mark.parametrize("b,n,k", [(3, 37, 5), (2, 301, 17), (4, 10, 12), (2, 9, 1)])
def test_radix_select_exact_with_ties(b, n, k):
    x = _tied_scores(b, n)
    got = select.radix_select_mask(x.to(DEV), k).cpu()
    ref = ref_sel.radix_select_mask(x, k)
    assert torch.equal(got, ref)
    assert torch.all(got.sum(1) == min(k, n))


def test_radix_select_ragged_rows_match_reference():
    rows = torch.sort(torch.randint(0, 6, (157,)))[0]
    rows = rows[rows != 2]  # an empty row
    s = torch.round(torch.randn(rows.numel()) * 3) / 3
    for k in (1, 7, 40):
        got = select.radix_select_rows(s.to(DEV), rows.to(DEV), 6, k).cpu()
        assert torch.equal(got, ref_sel.radix_select_rows(s, rows, 6, k)), k


def test_statistical_topk_threshold_matches_reference():
    x = torch.randn(3, 500)
    x[0, 3] = float("-inf")
    got = select.statistical_mask(x.to(DEV), 25).cpu()
    ref = ref_sel.statistical_mask(x, 25, torch.isfinite(x))
    assert torch.equal(got, ref)
    rows = torch.sort(torch.randint(0, 4, (300,)))[0]
    s = torch.randn(300, dtype=torch.float64)
    ptr = select.rows_ptr(rows, 4)
    got = select.statistical_select_ragged(s.to(DEV), ptr.to(DEV), 9).cpu()
    assert torch.equal(got, ref_sel.statistical_rows(s, rows, 4, 9))
    # theta itself, against the definition mean + std Phi^-1(1 - k/n)
    theta = select.statistical_threshold(s.to(DEV), ptr.to(DEV), 9).cpu()
    for r in range(4):
        v = s[rows == r]
        z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1 - 9 / v.numel())).double()
        expect = v.mean() + v.std(unbiased=False) * z
        assert abs(float(theta[r] - expect)) < 1e-6


# ------------------------------------------------------------------------------ spmm
def _edges(s, m, e):
    cnt = torch.multinomial(torch.ones(s), e, replacement=True).bincount(minlength=s)
    cnt[3] = 0  # a source without edges
    src_ptr = torch.zeros(s + 1, dtype=torch.int64)
    src_ptr[1:] = cnt.cumsum(0)
    dst = torch.randint(0, m - 1, (int(src_ptr[-1]),))  # row m-1 gets no edge: bias only
    return dst.to(DEV), src_ptr.to(DEV)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("s,m,d,e", [(11, 37, 13, 101), (4, 6, 130, 9)])
def test_edge_spmm_forward_and_grads(dtype, s, m, d, e):
    dst, src_ptr = _edges(s, m, e)
    ne = dst.numel()
    w = torch.randn(ne, dtype=dtype, device=DEV, requires_grad=True)
    g = torch.randn(s, d, dtype=dtype, device=DEV, requires_grad=True)
    b = torch.randn(d, dtype=dtype, device=DEV, requires_grad=True)
    out = spmm.edge_spmm(dst, src_ptr, w, g, b, m)
    ref = spmm.edge_spmm_reference(dst, src_ptr, w, g, b, m)
    _close(out, ref, dtype, scale=5)
    go = torch.randn_like(out)
    for got_g, ref_g in zip(
        torch.autograd.grad(out, (w, g, b), go),
        torch.autograd.grad(ref, (w, g, b), go),
        strict=True,
    ):
        _close(got_g, ref_g, dtype, scale=5)


def test_edge_spmm_matches_the_sparse_edgespmm():
    from rsgn.sparse import EdgeSpMM

    dst, src_ptr = _edges(11, 37, 101)
    w = torch.randn(dst.numel(), device=DEV, requires_grad=True)
    g = torch.randn(11, 13, device=DEV, requires_grad=True)
    b = torch.randn(13, device=DEV, requires_grad=True)
    out = spmm.edge_spmm(dst, src_ptr, w, g, b, 37)
    ref = EdgeSpMM.apply(dst, src_ptr, w, g, b, 37)
    _close(out, ref, torch.float32, scale=5)
    go = torch.randn_like(out)
    for x, y in zip(
        torch.autograd.grad(out, (w, g, b), go),
        torch.autograd.grad(ref, (w, g, b), go),
        strict=True,
    ):
        _close(x, y, torch.float32, scale=5)


def test_edge_spmm_without_edges_is_the_bias():
    g = torch.randn(3, 5, device=DEV, requires_grad=True)
    w = torch.zeros(0, device=DEV, requires_grad=True)
    b = torch.randn(5, device=DEV, requires_grad=True)
    out = spmm.edge_spmm(
        torch.zeros(0, dtype=torch.int64, device=DEV),
        torch.zeros(4, dtype=torch.int64, device=DEV),
        w,
        g,
        b,
        4,
    )
    assert torch.equal(out, b.expand(4, 5))
    gg, gb = torch.autograd.grad(out.sum(), (g, b))
    assert torch.equal(gg, torch.zeros_like(g)) and torch.equal(gb, torch.full_like(b, 4.0))


# ------------------------------------------------------------------------------ gate
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_threshold_forward_and_grads(dtype):
    m, d = 37, 13
    ap = torch.rand(m, dtype=dtype, device=DEV, requires_grad=True)
    h = torch.randn(m, d, dtype=dtype, device=DEV)
    h[0] = 0  # |h~| = 0: zero gradient, like torch's vector_norm
    h.requires_grad_(True)
    th = torch.randn(m, dtype=dtype, device=DEV, requires_grad=True)
    out = gate.soft_threshold(ap, h, th, gamma=0.3, temperature=0.7)
    ref = gate.soft_threshold_reference(ap, h, th, gamma=0.3, temperature=0.7)
    _close(out, ref, dtype)
    go = torch.randn_like(out)
    for x, y in zip(
        torch.autograd.grad(out, (ap, h, th), go),
        torch.autograd.grad(ref, (ap, h, th), go),
        strict=True,
    ):
        _close(x, y, dtype)


def test_fast_tanh_is_never_taken_without_cuda_compiler():
    if DEV == "cuda" and not _common.interpreting():
        pytest.skip("CUDA present: the fast path is tested by the gpu test")
    h = torch.randn(19, 7)
    ap, th = torch.rand(19), torch.randn(19)
    fast = gate.soft_threshold(ap, h, th, gamma=0.5, temperature=1.3, fast=True)
    plain = gate.soft_threshold(ap, h, th, gamma=0.5, temperature=1.3, fast=False)
    assert torch.equal(fast, plain)
    assert not gate.fast_tanh_usable(h.device)


@pytest.mark.gpu
def test_fast_tanh_gate_on_gpu():
    if not torch.cuda.is_available() or _common.interpreting():
        pytest.skip("needs a CUDA GPU and the Triton compiler (TRITON_INTERPRET unset)")
    m, d = 4099, 128
    h = torch.randn(m, d, device="cuda")
    ap, th = torch.rand(m, device="cuda"), torch.randn(m, device="cuda") * 3
    fast = gate.soft_threshold(ap, h, th, gamma=0.1, temperature=0.8, fast=True)
    ref = gate.soft_threshold_reference(ap, h, th, gamma=0.1, temperature=0.8)
    err = (fast - ref).abs().max().item()
    assert 0 < err < 2e-3  # tanh.approx.f32: ~2^-11 relative; nonzero shows the asm ran
