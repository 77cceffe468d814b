"""Poincaré geometry against float64, near the boundary and at tiny separations."""

import math

import pytest
import torch

from rsgn import geometry as G


def _pairs(radius: float, sep: float, n: int = 200, dim: int = 3, seed: int = 0):
    """Tangent vectors of points at Euclidean radius ``radius`` and of a neighbour at
    Euclidean separation ~``sep`` (both as float64 tangent vectors)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, dim, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    x = u * radius
    dirn = torch.randn(n, dim, generator=g, dtype=torch.float64)
    dirn = dirn / dirn.norm(dim=-1, keepdim=True)
    y = G.project(x + sep * dirn, max_radius=0.9995)
    return G.logmap0(x), G.logmap0(y)


@pytest.mark.parametrize("radius", [0.0, 0.5, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("sep", [1e-1, 1e-3, 1e-6])
def test_float32_distance_formula_matches_float64(radius, sep):
    """Formula error only: the reference uses the same float32-rounded points in float64."""
    vx, vy = _pairs(radius, sep)
    x32, y32 = G.expmap0(vx).float(), G.expmap0(vy).float()
    ref = G.dist(x32.double(), y32.double())
    d32 = G.dist(x32, y32)
    assert d32.dtype == torch.float32 and torch.isfinite(d32).all()
    rel = ((d32.double() - ref).abs() / ref).max().item()
    assert rel < 1e-6, rel


@pytest.mark.parametrize("radius", [0.0, 0.5, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("sep", [1e-1, 1e-3, 1e-6])
def test_tangent_parametrised_distance_matches_float64(radius, sep):
    """The model's path (float32 tangent vectors -> points + exact conformal factor): error
    within what rounding the coordinates to float32 allows (~6e-8 |x| / |x - y|)."""
    vx, vy = _pairs(radius, sep)
    vx32, vy32 = vx.float(), vy.float()
    xr, axr = G.expmap0_with_conformal(vx32.double())
    yr, ayr = G.expmap0_with_conformal(vy32.double())
    ref = G.dist_from_parts(xr, yr, axr, ayr)
    x, ax = G.expmap0_with_conformal(vx32)
    y, ay = G.expmap0_with_conformal(vy32)
    d32 = G.dist_from_parts(x, y, ax, ay).double()
    rel = ((d32 - ref).abs() / ref).max().item()
    bound = 2e-6 + 4e-7 * max(radius, 0.1) / sep
    assert rel < bound, (rel, bound)


def test_acosh_form_loses_small_distances_but_ours_does_not():
    vx, vy = _pairs(0.5, 1e-6)
    x, ax = G.expmap0_with_conformal(vx.float())
    y, ay = G.expmap0_with_conformal(vy.float())
    delta = ((x - y) ** 2).sum(-1) / (ax * ay)
    acosh = torch.acosh(1 + 2 * delta)
    ours = G.dist_from_parts(x, y, ax, ay)
    assert (acosh == 0).float().mean() > 0.5  # the naive form returns 0
    assert (ours > 0).all()


def test_conformal_factor_is_exact_near_boundary():
    errs_ours, errs_naive = [], []
    for t in torch.linspace(3.0, 3.79, 50).tolist():
        v = torch.tensor([[t, 0.0, 0.0]], dtype=torch.float32)
        x, a = G.expmap0_with_conformal(v)
        ref = 1.0 / math.cosh(torch.tensor(t, dtype=torch.float32).item()) ** 2
        errs_ours.append(abs(a.item() - ref) / ref)
        errs_naive.append(abs((1 - (x * x).sum()).item() - ref) / ref)  # float32 cancellation
    assert max(errs_ours) < 1e-6
    assert max(errs_naive) > 1e-5  # the cancelling form is visibly worse


def test_gradients_finite_at_coincident_points_and_boundary():
    v = torch.tensor([[0.3, -0.2, 0.1], [3.7, 0.1, 0.0]], requires_grad=True)
    w = v.detach().clone().requires_grad_(True)
    x, ax = G.expmap0_with_conformal(v)
    y, ay = G.expmap0_with_conformal(w)
    d = G.dist_from_parts(x, y, ax, ay).sum()
    d.backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(w.grad).all()
    assert d.item() == 0.0


def test_points_never_leave_the_ball():
    v = torch.randn(1000, 3) * 1e4
    x, a = G.expmap0_with_conformal(v)
    r = x.norm(dim=-1)
    assert (r <= G.MAX_RADIUS + 1e-6).all() and (a > 0).all()


def test_expmap_logmap_roundtrip_and_distance():
    x = G.expmap0(torch.randn(50, 3, dtype=torch.float64) * 0.5)
    u = torch.randn(50, 3, dtype=torch.float64) * 0.3 * G.conformal(x).unsqueeze(-1)
    y = G.expmap(x, u)
    assert torch.allclose(G.logmap(x, y), u, atol=1e-9)
    lam = 2 / G.conformal(x)
    assert torch.allclose(G.dist(x, y), lam * u.norm(dim=-1), atol=1e-9)
    assert torch.allclose(G.logmap0(G.expmap0(u)), u, atol=1e-12)


def test_geodesic_midpoint_halves_the_distance():
    x = G.expmap0(torch.randn(20, 3, dtype=torch.float64) * 0.6)
    y = G.expmap0(torch.randn(20, 3, dtype=torch.float64) * 0.6)
    mid = G.geodesic(x, y, 0.5)
    assert torch.allclose(G.dist(x, mid), G.dist(x, y) / 2, atol=1e-9)
    assert torch.allclose(G.dist(mid, y), G.dist(x, y) / 2, atol=1e-9)


def test_hyperbolic_ball_is_a_euclidean_ball():
    p = G.expmap0(torch.randn(30, 3, dtype=torch.float64) * 0.8)
    q = G.expmap0(torch.randn(30, 500, 3, dtype=torch.float64) * 0.8)
    radius = 0.7
    c, r = G.hyperbolic_ball_as_euclidean(p, radius)
    inside_h = G.dist(p.unsqueeze(1), q) < radius
    inside_e = (q - c.unsqueeze(1)).norm(dim=-1) < r.unsqueeze(1)
    assert (inside_h == inside_e).all()
    assert inside_h.any()
