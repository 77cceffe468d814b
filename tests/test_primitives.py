"""Hyperbolic-native primitives (``rsgn.kernels.lorentz``, ``.lut``, ``.lns``) against their
torch / float64 references, and each switch (plain vs primitive) against the other.

Tolerances (stated per test): float32 kernels vs float64 references on the *same float32
inputs*, so the numbers are formula + rounding error only.

Runs on the CPU under Triton's interpreter (``TRITON_INTERPRET=1`` is set here, before triton is
imported, when there is no CUDA); the same tests run on a CUDA GPU with the compiler.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

triton = pytest.importorskip("triton", reason="triton is not installed (pip install triton)")

from rsgn import geometry  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies" / "gpu_kernels"))
from prims import lns, lorentz, lut  # noqa: E402  (study-only kernels)

DEV = "cuda" if torch.cuda.is_available() else "cpu"
EPS32 = 2.0**-24


def _points(n: int, d: int, dtype, spread: float = 1.0):
    """Points from tangent vectors (a = 1/cosh^2|v| exact), cast after computing in float64."""
    v = torch.randn(n, d, dtype=torch.float64) * spread
    x, a = geometry.expmap0_with_conformal(v)
    return x.to(dtype).to(DEV), a.to(dtype).to(DEV)


# ------------------------------------------------------------------------------ Lorentz
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_torch", [False, True])
def test_lorentz_scores_match_float64(dtype, use_torch):
    """|s - s_ref| <= c eps (X0 Y0 + |Xs||Ys|): rounding of the coordinates and of the K <= 6
    term dot product, c = 8 (float32), 1e-15 absolute-relative for float64."""
    xq, aq = _points(19, 5, dtype, 1.2)
    x, a = _points(37, 5, dtype, 1.2)
    s = lorentz.lorentz_scores(xq, aq, x, a, use_torch=use_torch)
    ref = lorentz.lorentz_inner_reference(xq, aq, x, a)
    lq = lorentz.to_lorentz(xq.double(), 1 - (xq.double() ** 2).sum(-1)).abs()
    ly = lorentz.to_lorentz(x.double(), 1 - (x.double() ** 2).sum(-1)).abs()
    bound = (lq @ ly.T) * (8 * EPS32 if dtype == torch.float32 else 1e-15)
    assert torch.all((s.double() - ref).abs() <= bound + 1e-30)
    # d_H = arcosh(-<X,Y>_L): consistent with the 2 asinh distance (float64 check)
    if dtype == torch.float64:
        d_ref = lorentz.knn_reference(xq, aq, x, a, 37)[1]
        d_l = torch.sort(torch.acosh((-ref).clamp_min(1.0)), dim=1).values
        torch.testing.assert_close(d_l, d_ref.double(), atol=1e-6, rtol=1e-9)


def test_lorentz_self_excluded_and_invalid_args():
    x, a = _points(21, 3, torch.float32)
    s = lorentz.lorentz_scores(x, a, x, a, self_index=torch.arange(21, device=DEV))
    assert torch.all(torch.diagonal(s) == float("-inf"))
    with pytest.raises(ValueError):
        lorentz.lorentz_scores(x, a, x, a, precision="bf16")
    with pytest.raises(ValueError):
        lorentz.knn(x, a, x, a, 3, filter="lsh")
    with pytest.raises(ValueError):
        lorentz.lorentz_candidates(x, a, x, a, 4, candidates="faiss")


def test_fused_candidates_equal_topk_of_scores():
    """The fused GEMM + running top-M kernel returns the same candidate *set* as torch.topk of
    the score matrix (odd N over 3 splits, self excluded, M not a power of two)."""
    xq, aq = _points(17, 6, torch.float32, 0.8)
    x, a = _points(75, 6, torch.float32, 0.8)
    si = torch.arange(17, device=DEV)
    fused = lorentz.lorentz_candidates(xq, aq, x, a, 6, candidates="fused", self_index=si, splits=3)
    gemm = lorentz.lorentz_candidates(xq, aq, x, a, 6, candidates="gemm", self_index=si)
    assert torch.equal(fused.sort(1).values, gemm.sort(1).values)
    assert not (fused == si[:, None]).any()
    # fewer points than candidates: the missing slots are -1
    few = lorentz.lorentz_candidates(xq, aq, x[:5], a[:5], 8, candidates="fused")
    assert few.shape == (17, 5) and (few >= 0).all()


@pytest.mark.parametrize("d", [3, 8])
@pytest.mark.parametrize("candidates", ["gemm", "torch"])
def test_lorentz_filter_exact_knn_on_interior_points(d, candidates):
    """Interior points (radius <= ~0.96): oversample 2 recovers the exact kNN (recall 1), and the
    returned distances equal the float64 brute force within float32 rounding (rel 1e-6)."""
    n, k = 61, 5
    x, a = _points(n, d, torch.float32, 0.7)
    si = torch.arange(n, device=DEV)
    ti, td = lorentz.knn_reference(x, a, x, a, k, self_index=si)
    idx, dist = lorentz.knn(x, a, x, a, k, oversample=2, candidates=candidates, self_index=si)
    assert torch.equal(idx, ti)
    torch.testing.assert_close(dist.double(), td.double(), rtol=1e-6, atol=1e-7)
    ex_i, ex_d = lorentz.knn(x, a, x, a, k, filter="exact", candidates="gemm", self_index=si)
    assert torch.equal(ex_i, ti)  # the switch: plain and primitive agree
    torch.testing.assert_close(ex_d, dist, rtol=1e-6, atol=1e-7)


def test_lorentz_fused_knn_exact_and_matches_cktree():
    """Queries = 16 nodes (one BLOCK_Q), exact recall with the fused filter; the brute-force
    reference agrees with rsgn.topology's cKDTree kNN."""
    from rsgn.topology import knn_hyperbolic

    n, k, q = 53, 4, 16
    x, a = _points(n, 5, torch.float32, 0.7)
    si = torch.arange(q, device=DEV)
    ti, _ = lorentz.knn_reference(x[:q], a[:q], x, a, k, self_index=si)
    tree = knn_hyperbolic(x.double().cpu(), a.double().cpu(), k)[:q]
    assert torch.equal(ti.cpu(), tree)
    idx, _ = lorentz.knn(x[:q], a[:q], x, a, k, oversample=2, candidates="fused", self_index=si)
    assert torch.equal(idx, ti)
    # the plain version fused (running top-k of the accurate distance), 2 splits
    ex = lorentz.exact_candidates(x[:q], a[:q], x, a, k, self_index=si, splits=2)
    assert torch.equal(ex, ti)


def test_lorentz_float64_and_full_oversample_near_boundary():
    """Clustered points at radius 0.999 (neighbours ~1e-4 apart in Euclidean terms): with
    M = N - 1 candidates the filter is exact by construction; ``precision="fp64"`` and float64
    inputs are exact at oversample 2."""
    n, k = 40, 3
    c = torch.zeros(1, 4, dtype=torch.float64)
    c[0, 0] = 0.999
    noise = geometry.expmap0(torch.randn(n, 4, dtype=torch.float64) * 0.5)
    x64 = geometry.mobius_add(c.expand(n, 4), noise)
    a64 = 1.0 - (x64 * x64).sum(-1)
    si = torch.arange(n)
    for dt in (torch.float32, torch.float64):
        x, a = x64.to(dt).to(DEV), a64.to(dt).to(DEV)
        ti, td = lorentz.knn_reference(x, a, x, a, k, self_index=si.to(DEV))
        idx, dist = lorentz.knn(
            x, a, x, a, k, oversample=(n - 1) / k, candidates="gemm", self_index=si.to(DEV)
        )
        assert torch.equal(idx, ti)
        # fp64 score on float32 points (a recomputed from the rounded x): exact at oversample 2
        idx, _ = lorentz.knn(
            x, a, x, a, k, oversample=2, candidates="gemm", precision="fp64", self_index=si.to(DEV)
        )
        assert torch.equal(idx, ti)
        if dt == torch.float64:
            idx, _ = lorentz.knn(
                x, a, x, a, k, oversample=2, candidates="gemm", self_index=si.to(DEV)
            )
            assert torch.equal(idx, ti)


# ------------------------------------------------------------------------------ LUT exp(-d/tau)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", [33, 1000])
def test_lut_forward_matches_interpolant_and_bound(dtype, size):
    """LUT forward = its float64 interpolant model (fp32: abs 2e-7 on values <= 1; fp64 1e-14)
    and is within the interpolation bound h^2 e^h / 8 (relative) of exp(-d/tau) in the table."""
    d = (torch.rand(997, dtype=torch.float64) * 30.0).to(dtype)
    d[:3] = torch.tensor([0.0, -0.5, 26.0])  # clamp at 0, exactly u_max, beyond the table
    tau = 1.3
    y = lut.exp_decay(d.to(DEV), tau, mode="lut", size=size)
    model = lut.lut_reference(d.double(), tau, size=size)
    atol = 2e-7 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(y.double().cpu(), model, atol=atol, rtol=0)
    ref = lut.exp_decay_reference(d.double(), tau)
    inside = d.double() / tau < lut.DEFAULT_U_MAX
    h = lut.DEFAULT_U_MAX / (size - 1)
    rel = ((y.double().cpu() - ref).abs() / ref)[inside]
    slack = 30.0 * tau * EPS32 * 4 if dtype == torch.float32 else 1e-12  # u = d/tau rounding
    assert rel.max() <= h * h / 8 * math.exp(h) + slack
    assert y[2].item() == 0.0  # beyond u_max


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_mode_matches_torch(dtype):
    """Closed form: rel 8e-6 (float32: u up to 31 amplifies the rounding of d/tau and, on a GPU,
    of u log2(e) inside ex2.approx), 1e-14 (float64)."""
    d = (torch.rand(301, dtype=torch.float64) * 25).to(dtype).to(DEV)
    y = lut.exp_decay(d, 0.8, mode="exp")
    ref = torch.exp(-d.double() / 0.8)
    rtol = 8e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(y.double(), ref, rtol=rtol, atol=0)


@pytest.mark.parametrize("mode", ["exp", "lut"])
def test_lut_gradcheck_float64(mode):
    """Float64 gradcheck; LUT backward is the table slope (the interpolant's exact derivative).
    Points sit 1e-3 away from the table nodes (kinks) so finite differences are valid."""
    size = 33
    h = lut.DEFAULT_U_MAX / (size - 1)
    tau = torch.tensor(0.7, dtype=torch.float64)
    j = torch.randint(0, 20, (13,), dtype=torch.float64)
    f = 0.01 + 0.98 * torch.rand(13, dtype=torch.float64)
    d = ((j + f) * h * 0.7).to(DEV).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: lut.exp_decay(z, tau, mode=mode, size=size), (d,))


def test_lut_switch_and_backward_vs_closed_form():
    """Switch: LUT (65536 entries) vs closed form, float32, rel 5e-6 for values; the table
    slope vs -y/tau within the derivative's O(h) interpolation error (rel h/2 + fp32 slack);
    ``grad="value"`` within rel 5e-6."""
    size = 65536
    d = (torch.rand(513, dtype=torch.float64) * 15).float().to(DEV).requires_grad_(True)
    y_l = lut.exp_decay(d, 1.0, mode="lut", size=size)
    y_e = lut.exp_decay(d, 1.0, mode="exp")
    torch.testing.assert_close(y_l, y_e, rtol=5e-6, atol=0)
    (g_l,) = torch.autograd.grad(y_l.sum(), d)
    (g_e,) = torch.autograd.grad(y_e.sum(), d)
    h = lut.DEFAULT_U_MAX / (size - 1)
    # the slope (t1 - t0)/h suffers cancellation: eps * t / h relative on top of h/2
    torch.testing.assert_close(g_l, g_e, rtol=h / 2 + 2 * EPS32 / h, atol=0)
    # grad="value": -y_lut / tau, as accurate as the forward (rel 5e-6 here)
    y_v = lut.exp_decay(d, 1.0, mode="lut", size=size, grad="value")
    (g_v,) = torch.autograd.grad(y_v.sum(), d)
    torch.testing.assert_close(g_v, g_e, rtol=5e-6, atol=0)
    with pytest.raises(ValueError):
        lut.exp_decay(d, 1.0, mode="lut", grad="secant")


# ------------------------------------------------------------------------------ LNS Möbius
def _mobius_inputs(n: int, d: int, radius: float, dtype):
    v = torch.randn(n, d, dtype=torch.float64)
    x = v / v.norm(dim=1, keepdim=True) * radius
    y = geometry.expmap0(torch.randn(n, d, dtype=torch.float64) * 0.4)
    return x.to(dtype).to(DEV), y.to(dtype).to(DEV)


def _rel(z, ref):
    return ((z.double() - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-300)).max().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("radius", [0.5, 0.99])
@pytest.mark.parametrize("d", [3, 13])
def test_mobius_plain_and_lns_vs_float64(dtype, radius, d):
    """plain and LNS (closed-form Gaussian logs) vs the float64 reference on the same inputs:
    plain rel 2e-6 (float32: ~D + 10 rounding steps of 6e-8), LNS rel 1e-5 (float32: a GPU's
    lg2/ex2.approx add ~1e-7 per conversion and per Gaussian log, ~3D of them), 1e-13 (float64);
    ``lns_table`` with the default 1024-entry tables: rel 5e-3 (interpolation error of sb/db)."""
    x, y = _mobius_inputs(37, d, radius, dtype)
    ref = lns.mobius_add_reference(x, y)
    tol = 2e-6 if dtype == torch.float32 else 1e-13
    assert _rel(lns.mobius_add(x, y, mode="plain"), ref) < tol
    assert _rel(lns.mobius_add(x, y, mode="lns"), ref) < (1e-5 if dtype == torch.float32 else tol)
    assert _rel(lns.mobius_add(x, y, mode="lns_table"), ref) < 5e-3
    # the plain kernel is rsgn.geometry.mobius_add without its clamp
    torch.testing.assert_close(
        lns.mobius_add(x, y, mode="plain"), geometry.mobius_add(x, y), rtol=tol, atol=tol
    )


@pytest.mark.parametrize("mode", lns.MODES)
def test_mobius_zeros_and_identities(mode):
    """0 ⊕ y = y, x ⊕ 0 = x, x ⊕ (-x) = 0 (exact zeros in the LNS via the z = 0 rule)."""
    x, y = _mobius_inputs(11, 5, 0.7, torch.float32)
    x[0, 1] = 0.0  # a zero coordinate inside a row
    zero = torch.zeros_like(x)
    tol = {"plain": 2e-6, "lns": 1e-5, "lns_table": 5e-3}[mode]
    torch.testing.assert_close(lns.mobius_add(zero, y, mode=mode), y, rtol=tol, atol=1e-7)
    torch.testing.assert_close(lns.mobius_add(x, zero, mode=mode), x, rtol=tol, atol=1e-7)
    z = lns.mobius_add(x, -x, mode=mode)
    assert z.abs().max().item() < {"plain": 1e-6, "lns": 1e-5, "lns_table": 5e-3}[mode]


def test_gauss_tables_and_bad_args():
    t = lns.gauss_tables(64, 24.0, dtype=torch.float64)
    z = torch.linspace(0, 24, 64, dtype=torch.float64)
    torch.testing.assert_close(t[0], torch.log2(1 + torch.exp2(-z)))
    torch.testing.assert_close(t[1, 1:], torch.log2(1 - torch.exp2(-z[1:])))
    x = torch.zeros(3, 2, device=DEV)
    with pytest.raises(ValueError):
        lns.mobius_add(x, x, mode="posit")
    with pytest.raises(ValueError):
        lns.mobius_add(x, x[:2])
    assert math.isclose(float(lut.exp_table(5, 4.0, dtype=torch.float64)[1]), math.exp(-1.0))
