"""Poincaré-ball geometry (curvature -1) as pure torch functions.

Conventions (geoopt-like): the last dimension holds coordinates, every function is batched over
the leading ones. Points live in the open unit ball B^D = {x : |x| < 1}.

Float32 accuracy
----------------
The distance is evaluated in the form

    d_H(x, y) = 2 asinh( |x - y| / sqrt(a_x a_y) ),   a_x = 1 - |x|^2,

which keeps ~2e-7 relative error at every radius and separation *provided a_x is accurate*.
``1 - |x|^2`` cancels catastrophically near the boundary, so rsgn parametrises every point
in the tangent space at the origin, x = expmap0(v) = tanh(|v|) v / |v|, and computes

    a_x = 1 - tanh^2 |v| = sech^2 |v| = 1 / cosh^2 |v|

exactly, with no cancellation (:func:`expmap0_with_conformal`). The arcosh form
``acosh(1 + 2 delta)`` returns 0 for every delta below ~6e-8 in float32 and is not used.

Radius cap
----------
``|v|`` is clamped to :data:`MAX_TANGENT_NORM` (= artanh(0.999)), so points never leave the
ball and never reach the float32 region where ``tanh`` rounds to 1.
"""

from __future__ import annotations

import math

import torch

MAX_RADIUS = 0.999
"""Largest Euclidean radius a parametrised point may take."""

MAX_TANGENT_NORM = math.atanh(MAX_RADIUS)
"""Tangent norm corresponding to :data:`MAX_RADIUS` (artanh 0.999 = 3.8002)."""

_NORM_FLOOR = {
    torch.float16: 1e-4,
    torch.bfloat16: 1e-4,
    torch.float32: 1e-15,
    torch.float64: 1e-300,
}


def _floor(dtype: torch.dtype) -> float:
    return _NORM_FLOOR.get(dtype, 1e-15)


def expmap0_with_conformal(
    v: torch.Tensor, *, max_norm: float = MAX_TANGENT_NORM
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map tangent vectors at the origin into the ball and return the conformal factor too.

    x = tanh(|v|) v / |v|,   a = 1 - |x|^2 = 1 / cosh^2(|v|)

    with |v| clamped to ``max_norm`` (the clamp is a smooth rescale of v, gradients flow).

    Returns
    -------
    (x, a): points ``(..., D)`` and exact ``1 - |x|^2`` of shape ``(...)``.
    """
    n = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    n_safe = n.clamp_min(_floor(v.dtype))
    n_c = n_safe.clamp_max(max_norm)
    # tanh(n)/n -> 1 as n -> 0; use the series for tiny n to keep it smooth.
    scale = torch.where(n_safe < 1e-4, 1.0 - n_c * n_c / 3.0, torch.tanh(n_c) / n_safe)
    x = v * scale
    a = 1.0 / torch.cosh(n_c.squeeze(-1)) ** 2
    return x, a


def expmap0(v: torch.Tensor, *, max_norm: float = MAX_TANGENT_NORM) -> torch.Tensor:
    """Exponential map at the origin: x = tanh(|v|) v/|v| (|v| clamped to ``max_norm``)."""
    return expmap0_with_conformal(v, max_norm=max_norm)[0]


def logmap0(x: torch.Tensor) -> torch.Tensor:
    """Logarithmic map at the origin: v = artanh(|x|) x/|x| (inverse of :func:`expmap0`)."""
    n = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(_floor(x.dtype))
    n_c = n.clamp_max(1.0 - 1e-7 if x.dtype == torch.float64 else 1.0 - 1e-6)
    return x * (torch.atanh(n_c) / n)


def conformal(x: torch.Tensor) -> torch.Tensor:
    """a_x = 1 - |x|^2 for points given in ball coordinates (cancels near the boundary:
    prefer :func:`expmap0_with_conformal` when a tangent parametrisation is available)."""
    return 1.0 - (x * x).sum(-1)


def project(x: torch.Tensor, *, max_radius: float = MAX_RADIUS) -> torch.Tensor:
    """Rescale points whose norm exceeds ``max_radius`` back onto that sphere."""
    n = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(_floor(x.dtype))
    return torch.where(n > max_radius, x * (max_radius / n), x)


def dist_from_parts(
    x: torch.Tensor, y: torch.Tensor, a_x: torch.Tensor, a_y: torch.Tensor
) -> torch.Tensor:
    """Poincaré distance with precomputed conformal factors (broadcasting over leading dims).

    d_H = 2 asinh( |x - y| / sqrt(a_x a_y) )

    Gradients stay finite at x == y because the norm is ``torch.linalg.vector_norm``
    (its subgradient at 0 is 0).
    """
    diff = torch.linalg.vector_norm(x - y, dim=-1)
    return 2.0 * torch.asinh(diff / torch.sqrt(a_x * a_y))


def delta_from_parts(
    x: torch.Tensor, y: torch.Tensor, a_x: torch.Tensor, a_y: torch.Tensor
) -> torch.Tensor:
    """Monotone proxy delta = |x-y|^2 / (a_x a_y); d_H = 2 asinh(sqrt(delta))."""
    diff = x - y
    return (diff * diff).sum(-1) / (a_x * a_y)


def dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Poincaré distance between ball points x and y (``a`` computed in float64 internally).

    d_H(x, y) = arcosh(1 + 2|x-y|^2 / ((1-|x|^2)(1-|y|^2))) = 2 asinh(|x-y| / sqrt(a_x a_y)).
    """
    a_x = conformal(x.double()).to(x.dtype)
    a_y = conformal(y.double()).to(y.dtype)
    return dist_from_parts(x, y, a_x, a_y)


def dist0(x: torch.Tensor) -> torch.Tensor:
    """Distance from the origin: d_H(0, x) = 2 artanh |x|."""
    return 2.0 * torch.atanh(torch.linalg.vector_norm(x, dim=-1))


def mobius_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Möbius addition in the unit ball.

    x ⊕ y = ((1 + 2<x,y> + |y|^2) x + (1 - |x|^2) y) / (1 + 2<x,y> + |x|^2 |y|^2)
    """
    xy = (x * y).sum(-1, keepdim=True)
    x2 = (x * x).sum(-1, keepdim=True)
    y2 = (y * y).sum(-1, keepdim=True)
    num = (1 + 2 * xy + y2) * x + (1 - x2) * y
    den = (1 + 2 * xy + x2 * y2).clamp_min(_floor(x.dtype))
    return num / den


def expmap(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Exponential map at x:

    exp_x(u) = x ⊕ ( tanh( lambda_x |u| / 2 ) u / |u| ),   lambda_x = 2 / (1 - |x|^2).
    """
    un = torch.linalg.vector_norm(u, dim=-1, keepdim=True).clamp_min(_floor(u.dtype))
    lam = 2.0 / conformal(x).unsqueeze(-1)
    second = torch.tanh((lam * un / 2).clamp_max(15.0)) * u / un
    return project(mobius_add(x, second))


def logmap(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logarithmic map at x: log_x(y) = (2/lambda_x) artanh(|w|) w/|w|, w = (-x) ⊕ y."""
    w = mobius_add(-x, y)
    wn = torch.linalg.vector_norm(w, dim=-1, keepdim=True).clamp_min(_floor(w.dtype))
    lam = 2.0 / conformal(x).unsqueeze(-1)
    return (2.0 / lam) * torch.atanh(wn.clamp_max(1 - 1e-6)) * w / wn


def geodesic(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Point at fraction t along the geodesic from x to y: x ⊕ (t ⊗ ((-x) ⊕ y))."""
    tt = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if tt.dim() > 0:
        tt = tt.unsqueeze(-1)
    return expmap(x, tt * logmap(x, y))


def hyperbolic_ball_as_euclidean(
    p: torch.Tensor, radius: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hyperbolic ball B_H(p, R) as a Euclidean ball (centre, radius).

    With t = tanh(R/2):  centre = (1 - t^2) p / (1 - t^2 |p|^2),
                         radius = t (1 - |p|^2) / (1 - t^2 |p|^2).

    This lets a Euclidean spatial index answer exact hyperbolic radius / kNN queries.
    """
    t = torch.tanh(torch.as_tensor(radius, dtype=p.dtype) / 2)
    p2 = (p * p).sum(-1)
    den = 1 - t * t * p2
    centre = ((1 - t * t) / den).unsqueeze(-1) * p
    rad = t * (1 - p2) / den
    return centre, rad
