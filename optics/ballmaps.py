r"""Stokes vectors as points of hyperbolic 3-space: hyperboloid, Beltrami–Klein and Poincaré ball.

A Stokes vector :math:`S = (S_0, \vec S)` with :math:`p = |\vec S|/S_0 < 1` is a time-like
Minkowski vector; its ray is a point of :math:`H^3`.  Write
:math:`S = I(\cosh\rho,\ \sinh\rho\,\hat n)` with Lorentz norm
:math:`I = \sqrt{S_0^2 - |\vec S|^2}` and :math:`p = \tanh\rho`.  Three models of the same point,
and how a non-depolarising element acts on each:

* hyperboloid: :math:`h = S / I`; acts linearly, :math:`h \mapsto \Lambda h`;
* Beltrami–Klein: :math:`x_K = \vec S / S_0 = p\,\hat n`; acts as
  :math:`x \mapsto R(\vec D \oplus_E x)` (Einstein addition);
* Poincaré ball: :math:`x_P = x_K / (1 + \sqrt{1 - |x_K|^2})`; acts as
  :math:`x \mapsto R(a \oplus_M x)` (Möbius addition),

with :math:`M = g\,M_R\,B(\hat u, \eta)`, :math:`\vec D = \tanh\eta\,\hat u` and
:math:`a = \tanh(\eta/2)\,\hat u`.  The Poincaré radius is :math:`\tanh(\rho/2)` and
:math:`d_H(0, x) = \rho = \mathrm{artanh}\,p`.  Fully polarised light (p = 1) is the ideal
boundary; the intensity :math:`S_0` (or I) is not part of the point and must be carried separately.

Points outside the closed ball raise ``ValueError``.  All functions broadcast over leading dims.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float, as_stokes, as_vec3, unit_vectors
from .stokes import lorentz_norm

__all__ = [
    "stokes_to_klein",
    "klein_to_stokes",
    "klein_to_poincare",
    "poincare_to_klein",
    "stokes_to_poincare",
    "poincare_to_stokes",
    "stokes_to_hyperboloid",
    "hyperboloid_to_poincare",
    "poincare_to_hyperboloid",
    "dop_direction_to_poincare",
    "poincare_to_dop_direction",
    "mobius_add",
    "einstein_add",
    "stokes_distance",
    "hyperboloid_distance",
    "klein_distance",
    "poincare_distance",
]

_TOL = 1e-12


def _check_closed_ball(x: FloatArray, name: str) -> FloatArray:
    n2 = np.sum(x * x, axis=-1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    if np.any(n2 > 1.0 + _TOL):
        raise ValueError(
            f"{name}: points outside the unit ball (max |x| = {np.sqrt(n2.max()):.6g})"
        )
    return np.minimum(n2, 1.0)


def _check_open_ball(x: FloatArray, name: str) -> FloatArray:
    n2 = _check_closed_ball(x, name)
    if np.any(n2 >= 1.0):
        raise ValueError(
            f"{name}: points on the boundary (fully polarised light) have no finite distance"
        )
    return n2


def stokes_to_klein(stokes: ArrayLike) -> FloatArray:
    r"""Klein coordinate :math:`x_K = \vec S / S_0` (the normalised Poincaré-ball picture)."""
    s = as_stokes(stokes)
    if np.any(s[..., 0] <= 0):
        raise ValueError("stokes: S0 must be positive")
    x = s[..., 1:] / s[..., 0, None]
    _check_closed_ball(x, "stokes")
    return x


def klein_to_stokes(x: ArrayLike, s0: ArrayLike = 1.0) -> FloatArray:
    r"""Stokes vector :math:`S_0\,(1, x_K)` of total intensity ``s0``."""
    xk = as_vec3(x, "x")
    _check_closed_ball(xk, "x")
    i0 = as_float(s0)[..., None]
    shape = np.broadcast_shapes(xk.shape[:-1], i0.shape[:-1])
    i0 = np.broadcast_to(i0, shape + (1,))
    return np.concatenate([i0, i0 * xk], axis=-1)


def klein_to_poincare(x: ArrayLike) -> FloatArray:
    r""":math:`x_P = x_K / (1 + \sqrt{1 - |x_K|^2})`."""
    xk = as_vec3(x, "x")
    n2 = _check_closed_ball(xk, "x")
    return xk / (1.0 + np.sqrt(1.0 - n2))[..., None]


def poincare_to_klein(y: ArrayLike) -> FloatArray:
    r""":math:`x_K = 2 x_P / (1 + |x_P|^2)`."""
    yp = as_vec3(y, "y")
    n2 = _check_closed_ball(yp, "y")
    return 2.0 * yp / (1.0 + n2)[..., None]


def stokes_to_poincare(stokes: ArrayLike) -> FloatArray:
    r"""Poincaré-ball point of a Stokes vector: radius :math:`\tanh(\mathrm{artanh}(p)/2)`,
    direction :math:`\hat n`.
    """
    return klein_to_poincare(stokes_to_klein(stokes))


def poincare_to_stokes(
    y: ArrayLike, s0: ArrayLike | None = None, lorentz_norm: ArrayLike | None = None
) -> FloatArray:
    r"""Stokes vector of a Poincaré-ball point, normalised by total intensity *or* Lorentz norm.

    With ``s0`` (default 1): :math:`S = S_0 (1, x_K)`.  With ``lorentz_norm`` I:
    :math:`S = I\,h`, :math:`h` from :func:`poincare_to_hyperboloid`, so :math:`S_0 = I\cosh\rho`
    grows toward the boundary.  Give at most one of the two.
    """
    if s0 is not None and lorentz_norm is not None:
        raise ValueError("give s0 or lorentz_norm, not both")
    if lorentz_norm is not None:
        return as_float(lorentz_norm)[..., None] * poincare_to_hyperboloid(y)
    return klein_to_stokes(poincare_to_klein(y), 1.0 if s0 is None else s0)


def stokes_to_hyperboloid(stokes: ArrayLike) -> FloatArray:
    r"""Unit hyperboloid point :math:`h = S / \sqrt{S_0^2 - |\vec S|^2}` (needs p < 1)."""
    s = as_stokes(stokes)
    i = lorentz_norm(s)
    if np.any(s[..., 0] <= 0) or np.any(i <= 0):
        raise ValueError(
            "stokes: needs S0 > 0 and DOP < 1 (fully polarised light is on the boundary)"
        )
    return s / i[..., None]


def poincare_to_hyperboloid(y: ArrayLike) -> FloatArray:
    r""":math:`h = \big(1 + |y|^2,\ 2y\big) / (1 - |y|^2)`."""
    yp = as_vec3(y, "y")
    n2 = _check_open_ball(yp, "y")
    den = (1.0 - n2)[..., None]
    return np.concatenate([(1.0 + n2)[..., None], 2.0 * yp], axis=-1) / den


def hyperboloid_to_poincare(h: ArrayLike) -> FloatArray:
    r""":math:`y = \vec h / (1 + h_0)`."""
    hh = as_stokes(h, "h")
    return hh[..., 1:] / (1.0 + hh[..., 0, None])


def dop_direction_to_poincare(dop: ArrayLike, direction: ArrayLike) -> FloatArray:
    r"""Poincaré point :math:`\tanh(\mathrm{artanh}(p)/2)\,\hat n = p/(1+\sqrt{1-p^2})\,\hat n`."""
    p = as_float(dop)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("dop must lie in [0, 1]")
    n = unit_vectors(direction, "direction")
    return (p / (1.0 + np.sqrt(1.0 - p * p)))[..., None] * n


def poincare_to_dop_direction(y: ArrayLike) -> tuple[FloatArray, FloatArray]:
    r"""Inverse of :func:`dop_direction_to_poincare`: :math:`p = 2|y|/(1+|y|^2)`, :math:`\hat n =
    y/|y|`.

    The direction of the origin is returned as (1, 0, 0).
    """
    yp = as_vec3(y, "y")
    n2 = _check_closed_ball(yp, "y")
    r = np.sqrt(n2)
    n = np.where(r[..., None] > 0, yp / np.where(r > 0, r, 1.0)[..., None], [1.0, 0.0, 0.0])
    return 2.0 * r / (1.0 + n2), n


def mobius_add(a: ArrayLike, b: ArrayLike) -> FloatArray:
    r"""Möbius addition in the unit Poincaré ball (curvature -1).

    .. math:: a \oplus_M b = \frac{(1 + 2a\cdot b + |b|^2)\,a + (1 - |a|^2)\,b}{1 + 2a\cdot b +
    |a|^2|b|^2}
    """
    x, y = as_vec3(a, "a"), as_vec3(b, "b")
    xy = np.sum(x * y, axis=-1)[..., None]
    x2 = np.sum(x * x, axis=-1)[..., None]
    y2 = np.sum(y * y, axis=-1)[..., None]
    return ((1 + 2 * xy + y2) * x + (1 - x2) * y) / (1 + 2 * xy + x2 * y2)


def einstein_add(u: ArrayLike, v: ArrayLike) -> FloatArray:
    r"""Einstein (relativistic velocity) addition in the Klein ball, c = 1.

    .. math:: u \oplus_E v = \frac{1}{1 + u\cdot v}\Big(u + \frac{v}{\gamma_u}
              + \frac{\gamma_u}{1+\gamma_u}(u\cdot v)\,u\Big),\quad \gamma_u = (1-|u|^2)^{-1/2}
    """
    x, y = as_vec3(u, "u"), as_vec3(v, "v")
    n2 = _check_open_ball(x, "u")[..., None]
    gamma = 1.0 / np.sqrt(1.0 - n2)
    xy = np.sum(x * y, axis=-1)[..., None]
    return (x + y / gamma + gamma / (1.0 + gamma) * xy * x) / (1.0 + xy)


def stokes_distance(s: ArrayLike, t: ArrayLike) -> FloatArray:
    r"""Hyperbolic distance between the states of two partially polarised Stokes vectors.

    .. math:: \cosh d = \frac{S_0T_0 - \vec S\cdot\vec T}{\sqrt{(S_0^2-|\vec S|^2)(T_0^2-|\vec
    T|^2)}}

    Independent of the intensities; invariant under every non-depolarising element applied to
    both.  Needs DOP < 1 for both.
    """
    return hyperboloid_distance(stokes_to_hyperboloid(s), stokes_to_hyperboloid(t))


def hyperboloid_distance(h: ArrayLike, k: ArrayLike) -> FloatArray:
    r""":math:`d = \mathrm{arcosh}(h_0k_0 - \vec h\cdot\vec k)` for unit hyperboloid points."""
    a, b = as_stokes(h, "h"), as_stokes(k, "k")
    inner = a[..., 0] * b[..., 0] - np.sum(a[..., 1:] * b[..., 1:], axis=-1)
    return np.arccosh(np.maximum(inner, 1.0))


def klein_distance(x: ArrayLike, y: ArrayLike) -> FloatArray:
    r""":math:`\cosh d = (1 - x\cdot y)/\sqrt{(1-|x|^2)(1-|y|^2)}`."""
    a, b = as_vec3(x, "x"), as_vec3(y, "y")
    na, nb = _check_open_ball(a, "x"), _check_open_ball(b, "y")
    c = (1.0 - np.sum(a * b, axis=-1)) / np.sqrt((1.0 - na) * (1.0 - nb))
    return np.arccosh(np.maximum(c, 1.0))


def poincare_distance(x: ArrayLike, y: ArrayLike) -> FloatArray:
    r""":math:`d = \mathrm{arcosh}\big(1 + 2|x-y|^2 / ((1-|x|^2)(1-|y|^2))\big)`."""
    a, b = as_vec3(x, "x"), as_vec3(y, "y")
    na, nb = _check_open_ball(a, "x"), _check_open_ball(b, "y")
    diff = np.sum((a - b) ** 2, axis=-1)
    return np.arccosh(1.0 + 2.0 * diff / ((1.0 - na) * (1.0 - nb)))
