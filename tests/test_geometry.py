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


# ------------------------------------------------------------------ closed forms and boundaries
# Shapes are 3-D with distinct sizes ([2, 5, 3]: batch, points, ball dimension) so that a
# reduction over the wrong axis changes the result or the shape.


def _batched(norms, seed: int = 0) -> torch.Tensor:
    """Float64 vectors of shape [2, len(norms), 3] with the given Euclidean norms."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(2, len(norms), 3, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    return u * torch.tensor(norms, dtype=torch.float64).unsqueeze(-1)


def test_expmap0_is_tanh_of_the_norm_in_float64_on_both_branches():
    """x = tanh(|v|) v/|v| and a = sech^2 |v|, to 1e-14, across the small-norm series branch
    (|v| < 1e-4), the tanh branch and beyond the radius cap (|v| clamped to artanh 0.999)."""
    norms = [1e-9, 3e-5, 9.9e-5, 0.3, 2.5, 50.0]
    v = _batched(norms)
    x, a = G.expmap0_with_conformal(v)
    n = v.norm(dim=-1, keepdim=True)
    nc = n.clamp_max(G.MAX_TANGENT_NORM)
    want = torch.tanh(nc) / n * v
    assert x.shape == v.shape and a.shape == v.shape[:-1]
    assert torch.allclose(x, want, rtol=1e-14, atol=0)
    assert torch.allclose(a, 1 / torch.cosh(nc.squeeze(-1)) ** 2, rtol=1e-14, atol=0)
    assert torch.equal(G.expmap0(v), x)
    # at the cap the point sits exactly on the sphere of radius MAX_RADIUS = 0.999
    assert abs(x[:, -1].norm(dim=-1) - 0.999).max() < 1e-13
    assert abs(a[:, -1] - (1 - 0.999**2)).max() < 1e-15
    assert G.MAX_TANGENT_NORM == pytest.approx(0.5 * math.log(1.999 / 0.001), rel=1e-15)


def test_expmap0_custom_max_norm_and_zero_vector():
    v = _batched([0.5, 1.0, 4.0])
    x = G.expmap0(v, max_norm=1.0)
    assert torch.allclose(x.norm(dim=-1), torch.tanh(torch.tensor([0.5, 1.0, 1.0])).double())
    x0, a0 = G.expmap0_with_conformal(torch.zeros(2, 3))
    assert torch.equal(x0, torch.zeros(2, 3)) and torch.equal(a0, torch.ones(2))


def test_logmap0_is_artanh_of_the_norm_and_inverts_expmap0_batched():
    x = _batched([1e-9, 1e-3, 0.5, 0.9, 0.999])
    v = G.logmap0(x)
    r = x.norm(dim=-1, keepdim=True)
    assert torch.allclose(v, torch.atanh(r) / r * x, rtol=1e-13, atol=0)
    assert torch.allclose(G.expmap0(v), x, rtol=1e-12, atol=0)


def test_logmap0_clamps_at_one_minus_1e7_in_float64_and_1e6_in_float32():
    e = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    # float64: 1 - 5e-7 is inside the clamp (1 - 1e-7), 1 - 5e-8 and 1 + 0.5 are beyond it
    r64 = torch.tensor([[1 - 5e-7], [1 - 5e-8], [1.5]], dtype=torch.float64)
    n64 = G.logmap0(r64 * e).norm(dim=-1)
    assert n64[0].item() == pytest.approx(math.atanh(1 - 5e-7), rel=1e-9)
    cap64 = math.atanh(1 - 1e-7)
    assert n64[1:].tolist() == pytest.approx([cap64, cap64], rel=1e-9)
    # float32: the boundary point |x| = 1 maps to artanh(1 - 1e-6), finite
    r32 = torch.tensor([[1.0], [2.0]], dtype=torch.float32)
    n32 = G.logmap0(r32 * e.float()).norm(dim=-1)
    assert torch.isfinite(n32).all()
    cap32 = math.atanh(torch.tensor(1 - 1e-6, dtype=torch.float32).item())
    assert n32.tolist() == pytest.approx([cap32, cap32], rel=1e-6)


def test_conformal_and_dist0_closed_forms_batched():
    x = _batched([0.0, 0.5, 0.8, 0.99])
    assert torch.allclose(G.conformal(x), 1 - torch.tensor([0.0, 0.25, 0.64, 0.9801]).double())
    d0 = G.dist0(x)
    assert d0.shape == (2, 4)
    want = torch.tensor([0.0, math.log(3.0), math.log(9.0), math.log(199.0)], dtype=torch.float64)
    assert torch.allclose(d0, want.expand(2, 4), rtol=1e-13, atol=0)
    assert torch.allclose(d0, G.dist(torch.zeros_like(x), x), rtol=1e-12, atol=1e-15)


def test_project_rescales_only_points_beyond_max_radius():
    x = _batched([0.2, 0.998, 0.9995, 1.0, 1.5, 40.0])
    p = G.project(x)
    r = p.norm(dim=-1)
    assert torch.equal(p[:, :2], x[:, :2])  # inside: untouched, bit for bit
    assert torch.allclose(r[:, 2:], torch.full((2, 4), 0.999, dtype=torch.float64), rtol=1e-15)
    # the direction is kept
    assert torch.allclose(p / r.unsqueeze(-1), x / x.norm(dim=-1, keepdim=True), rtol=1e-14)
    q = G.project(x, max_radius=0.5)
    assert torch.equal(q[:, 0], x[:, 0])
    assert torch.allclose(q[:, 1:].norm(dim=-1), torch.full((2, 5), 0.5).double(), rtol=1e-15)


def test_delta_from_parts_closed_form_and_relation_to_the_distance():
    x = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    y = torch.tensor([0.0, -0.6, 0.0], dtype=torch.float64)
    ax, ay = G.conformal(x), G.conformal(y)
    # |x - y|^2 = 0.61, a_x a_y = 0.75 * 0.64 = 0.48
    assert G.delta_from_parts(x, y, ax, ay).item() == pytest.approx(0.61 / 0.48, rel=1e-15)
    px = G.expmap0(torch.randn(2, 5, 3, dtype=torch.float64))
    py = G.expmap0(torch.randn(5, 3, dtype=torch.float64))
    apx, apy = G.conformal(px), G.conformal(py)
    delta = G.delta_from_parts(px, py, apx, apy)
    assert delta.shape == (2, 5)
    d = G.dist_from_parts(px, py, apx, apy)
    assert torch.allclose(2 * torch.asinh(delta.sqrt()), d, rtol=1e-13)
    assert torch.allclose(d, torch.acosh(1 + 2 * delta), rtol=1e-9)


def test_mobius_addition_identities():
    x = G.expmap0(torch.randn(2, 5, 3, dtype=torch.float64))
    y = G.expmap0(torch.randn(2, 5, 3, dtype=torch.float64))
    zero = torch.zeros_like(x)
    assert torch.allclose(G.mobius_add(x, zero), x, rtol=1e-15)
    assert torch.allclose(G.mobius_add(zero, y), y, rtol=1e-15)
    assert G.mobius_add(-x, x).abs().max() < 1e-15
    # |(-x) + y| = tanh(d_H(x, y) / 2)
    w = G.mobius_add(-x, y).norm(dim=-1)
    assert torch.allclose(w, torch.tanh(G.dist(x, y) / 2), rtol=1e-12)
    # on a line it is relativistic velocity addition (a + b) / (1 + a b)
    a = torch.tensor([[0.3], [-0.7], [0.9]], dtype=torch.float64)
    b = torch.tensor([[0.5], [0.2], [-0.4]], dtype=torch.float64)
    assert torch.allclose(G.mobius_add(a, b), (a + b) / (1 + a * b), rtol=1e-15)


def test_expmap_is_projected_and_logmap_clamps_near_the_boundary():
    x = G.expmap0(torch.randn(2, 5, 3, dtype=torch.float64) * 0.5)
    far = G.expmap(x, torch.randn(2, 5, 3, dtype=torch.float64) * 1e3)
    assert torch.allclose(far.norm(dim=-1), torch.full((2, 5), 0.999, dtype=far.dtype), rtol=1e-12)
    # exp_x(u) at x = 0 is expmap0(u / 2)... with lambda_0 = 2: tanh(|u|) u/|u|
    u = _batched([0.1, 1.0, 2.0])
    assert torch.allclose(G.expmap(torch.zeros_like(u), u), G.expmap0(u), rtol=1e-14)
    # log_0(y) = artanh|y| y/|y|, clamped at |w| = 1 - 1e-6
    y = torch.tensor([[0.5, 0, 0], [1 - 1e-9, 0, 0]], dtype=torch.float64)
    lg = G.logmap(torch.zeros_like(y), y)
    assert lg[0, 0].item() == pytest.approx(math.atanh(0.5), rel=1e-14)
    assert lg[1, 0].item() == pytest.approx(math.atanh(1 - 1e-6), rel=1e-12)
    assert lg[:, 1:].abs().max() == 0


def test_geodesic_with_per_point_fractions():
    x = G.expmap0(torch.randn(2, 5, 3, dtype=torch.float64) * 0.6)
    y = G.expmap0(torch.randn(2, 5, 3, dtype=torch.float64) * 0.6)
    t = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0], [0.1, 0.3, 0.6, 0.9, 0.2]], dtype=torch.float64)
    g = G.geodesic(x, y, t)
    assert g.shape == x.shape
    assert torch.allclose(G.dist(x, g), t * G.dist(x, y), rtol=1e-9, atol=1e-12)
    t1 = t[0]
    g1 = G.geodesic(x[0], y[0], t1)
    assert torch.allclose(G.dist(x[0], g1), t1 * G.dist(x[0], y[0]), rtol=1e-9, atol=1e-12)


def test_hyperbolic_ball_at_the_origin_and_with_a_tensor_radius():
    c, r = G.hyperbolic_ball_as_euclidean(torch.zeros(4, 3, dtype=torch.float64), 1.3)
    assert torch.equal(c, torch.zeros(4, 3, dtype=torch.float64))
    assert torch.allclose(r, torch.full((4,), math.tanh(0.65), dtype=torch.float64), rtol=1e-15)
    p = torch.tensor([[0.5, 0.0, 0.0]], dtype=torch.float64)
    c, r = G.hyperbolic_ball_as_euclidean(p, torch.tensor(1.0, dtype=torch.float64))
    t = math.tanh(0.5)
    den = 1 - t * t * 0.25
    assert c[0, 0].item() == pytest.approx((1 - t * t) * 0.5 / den, rel=1e-15)
    assert r[0].item() == pytest.approx(t * 0.75 / den, rel=1e-15)
    # the ball's two ends on the x-axis are exactly distance R from p
    e = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    ends = torch.stack([c[0] - r[0] * e, c[0] + r[0] * e])
    assert torch.allclose(G.dist(p, ends), torch.ones(2, dtype=torch.float64), rtol=1e-12)


def test_hyperbolic_ball_batched_equals_pointwise():
    p = G.expmap0(torch.randn(2, 5, 3, dtype=torch.float64))
    radius = torch.tensor([[0.3], [1.1]], dtype=torch.float64)
    c, r = G.hyperbolic_ball_as_euclidean(p, radius)
    assert c.shape == (2, 5, 3) and r.shape == (2, 5)
    for b in range(2):
        for i in range(5):
            ci, ri = G.hyperbolic_ball_as_euclidean(p[b, i], radius[b, 0])
            assert torch.allclose(c[b, i], ci, rtol=1e-14) and torch.allclose(r[b, i], ri)
