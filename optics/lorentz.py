r"""Lorentz-group structure of non-depolarising Mueller matrices.

A Stokes vector is a 4-vector of Minkowski space with metric :math:`G = \mathrm{diag}(1,-1,-1,-1)`
(:math:`S^T G S = S_0^2 - |\vec S|^2 \ge 0`).  Every non-depolarising Mueller matrix is a gain times
a proper orthochronous Lorentz transformation,

.. math:: M = g\,\Lambda,\qquad \Lambda \in SO^+(3,1),\qquad M^T G M = g^2 G,\qquad g = |\det J|,

(Gil & Ossikovski, *Polarized Light and the Mueller Matrix Approach*; Tudor, *Symmetry* 10:52,
2018).  Retarders and rotators are spatial rotations; a homogeneous diattenuator with principal
intensity transmittances :math:`q \ge r` along Stokes axis :math:`\hat u` is
:math:`\sqrt{qr}\,B(\hat u, \eta)` with rapidity :math:`\eta = \mathrm{artanh} D =
\tfrac12\ln(q/r)`.

All functions return numpy arrays batched over leading dims.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float, as_mueller, skew, unit_vectors

__all__ = [
    "MINKOWSKI",
    "minkowski_metric",
    "minkowski_inner",
    "rotation3",
    "rotation",
    "boost",
    "mueller_gain",
    "lorentz_defect",
    "is_scaled_lorentz",
    "rapidity_from_diattenuation",
    "diattenuation_from_rapidity",
    "rapidity_from_transmittances",
    "diattenuation_from_transmittances",
    "transmittances_from_rapidity",
    "boost_parameters",
    "rotation_parameters",
]

MINKOWSKI: FloatArray = np.diag([1.0, -1.0, -1.0, -1.0])
MINKOWSKI.setflags(write=False)


def minkowski_metric() -> FloatArray:
    r"""Return a fresh copy of :math:`G = \mathrm{diag}(1, -1, -1, -1)`."""
    return MINKOWSKI.copy()


def minkowski_inner(a: ArrayLike, b: ArrayLike) -> FloatArray:
    r"""Minkowski inner product :math:`\langle a, b\rangle = a_0 b_0 - \vec a\cdot\vec b` (last
    axis).
    """
    x, y = as_float(a), as_float(b)
    return x[..., 0] * y[..., 0] - np.sum(x[..., 1:] * y[..., 1:], axis=-1)


def rotation3(axis: ArrayLike, angle: ArrayLike) -> FloatArray:
    r"""Right-handed 3x3 rotation by ``angle`` about the unit ``axis`` (Rodrigues):

    .. math:: R = \cos\phi\,I + (1-\cos\phi)\,\hat u\hat u^T + \sin\phi\,[\hat u]_\times
    """
    u = unit_vectors(axis, "axis")
    phi = as_float(angle)
    shape = np.broadcast_shapes(u.shape[:-1], phi.shape)
    u = np.broadcast_to(u, shape + (3,))
    phi = np.broadcast_to(phi, shape)[..., None, None]
    outer = u[..., :, None] * u[..., None, :]
    return np.cos(phi) * np.eye(3) + (1.0 - np.cos(phi)) * outer + np.sin(phi) * skew(u)


def rotation(axis: ArrayLike, angle: ArrayLike) -> FloatArray:
    r"""4x4 Lorentz rotation: identity on :math:`S_0`, :func:`rotation3` on :math:`\vec S`."""
    r3 = rotation3(axis, angle)
    out = np.zeros(r3.shape[:-2] + (4, 4))
    out[..., 0, 0] = 1.0
    out[..., 1:, 1:] = r3
    return out


def boost(axis: ArrayLike, rapidity: ArrayLike) -> FloatArray:
    r"""Pure Lorentz boost :math:`B(\hat u, \eta)` along the unit Stokes-space ``axis``.

    .. math::

        B_{00} = \cosh\eta,\quad B_{0i} = B_{i0} = \sinh\eta\,u_i,\quad
        B_{ij} = \delta_{ij} + (\cosh\eta - 1)\,u_i u_j

    Collinear boosts add rapidities: :math:`B(\hat u,a)B(\hat u,b) = B(\hat u,a+b)`.
    """
    u = unit_vectors(axis, "axis")
    eta = as_float(rapidity)
    shape = np.broadcast_shapes(u.shape[:-1], eta.shape)
    u = np.broadcast_to(u, shape + (3,))
    eta = np.broadcast_to(eta, shape)
    ch, sh = np.cosh(eta), np.sinh(eta)
    out = np.zeros(shape + (4, 4))
    out[..., 0, 0] = ch
    out[..., 0, 1:] = sh[..., None] * u
    out[..., 1:, 0] = sh[..., None] * u
    out[..., 1:, 1:] = np.eye(3) + (ch - 1.0)[..., None, None] * u[..., :, None] * u[..., None, :]
    return out


def mueller_gain(mueller: ArrayLike) -> FloatArray:
    r"""Gain :math:`g = |\det M|^{1/4}` (:math:`= |\det J|` for a Jones-derived M = g Λ)."""
    m = as_mueller(mueller)
    return np.abs(np.linalg.det(m)) ** 0.25


def lorentz_defect(mueller: ArrayLike) -> FloatArray:
    r"""Relative defect :math:`\max|M^T G M - g^2 G| / g^2` with :math:`g` from
    :func:`mueller_gain`.

    Zero (to round-off) exactly for non-depolarising Mueller matrices of non-singular Jones
    matrices; positive for depolarisers.  Singular matrices (ideal polarisers, g = 0) give ``inf``.
    """
    m = as_mueller(mueller)
    g2 = mueller_gain(m) ** 2
    lhs = np.swapaxes(m, -1, -2) @ MINKOWSKI @ m
    err = np.max(np.abs(lhs - g2[..., None, None] * MINKOWSKI), axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(g2 > 0, err / np.where(g2 > 0, g2, 1.0), np.inf)


def is_scaled_lorentz(mueller: ArrayLike, atol: float = 1e-9) -> np.ndarray:
    r"""True where :math:`M^T G M = g^2 G` within ``atol`` (relative) and :math:`M_{00} > 0`."""
    m = as_mueller(mueller)
    return (lorentz_defect(m) <= atol) & (m[..., 0, 0] > 0)


def rapidity_from_diattenuation(d: ArrayLike) -> FloatArray:
    r""":math:`\eta = \mathrm{artanh}\,D` (``inf`` at D = 1)."""
    dd = as_float(d)
    if np.any((dd < 0) | (dd > 1)):
        raise ValueError("diattenuation must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        return np.arctanh(dd)


def diattenuation_from_rapidity(eta: ArrayLike) -> FloatArray:
    r""":math:`D = \tanh\eta`."""
    return np.tanh(as_float(eta))


def diattenuation_from_transmittances(q: ArrayLike, r: ArrayLike) -> FloatArray:
    r""":math:`D = (q - r)/(q + r)` for principal intensity transmittances :math:`q \ge r \ge 0`."""
    qq, rr = as_float(q), as_float(r)
    return (qq - rr) / (qq + rr)


def rapidity_from_transmittances(q: ArrayLike, r: ArrayLike) -> FloatArray:
    r""":math:`\eta = \tfrac12\ln(q/r) = \mathrm{artanh}\,D` (``inf`` for r = 0)."""
    qq, rr = as_float(q), as_float(r)
    with np.errstate(divide="ignore"):
        return 0.5 * (np.log(qq) - np.log(rr))


def transmittances_from_rapidity(
    eta: ArrayLike, q: ArrayLike = 1.0
) -> tuple[FloatArray, FloatArray]:
    r"""Principal transmittances with maximum ``q`` and rapidity :math:`\eta`: :math:`(q,\
    q\,e^{-2\eta})`.
    """
    e, qq = np.broadcast_arrays(as_float(eta), as_float(q))
    return qq.copy(), qq * np.exp(-2.0 * e)


def boost_parameters(mueller: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Gain, unit axis and rapidity of a diattenuator Mueller matrix :math:`M = g\,B(\hat u,
    \eta)`.

    Read from the first row: :math:`M_{00} = g\cosh\eta`, :math:`\vec M_{0} = g\sinh\eta\,\hat u`,
    so
    :math:`\eta = \mathrm{artanh}(|\vec M_0|/M_{00})` and :math:`g = M_{00}/\cosh\eta`.  For
    :math:`\eta = 0` the axis is returned as (1, 0, 0).
    """
    m = as_mueller(mueller)
    row = m[..., 0, 1:]
    norm = np.linalg.norm(row, axis=-1)
    d = norm / m[..., 0, 0]
    eta = np.arctanh(np.clip(d, 0.0, 1.0))
    axis = np.where(
        norm[..., None] > 0, row / np.where(norm > 0, norm, 1.0)[..., None], [1.0, 0, 0]
    )
    gain = m[..., 0, 0] / np.cosh(eta)
    return gain, axis, eta


def rotation_parameters(mueller: ArrayLike) -> tuple[FloatArray, FloatArray]:
    r"""Unit axis and angle :math:`\phi \in [0, \pi]` of a rotation Mueller matrix (right-handed).

    :math:`\cos\phi = (\mathrm{tr}\,R_3 - 1)/2`; the axis comes from the antisymmetric part, or, for
    :math:`\phi > \pi/2`, from :math:`(R_3 + R_3^T)/2 - \cos\phi\,I = (1-\cos\phi)\,\hat u\hat u^T`.
    For
    :math:`\phi = 0` the axis is (1, 0, 0).
    """
    m = as_mueller(mueller)
    r3 = m[..., 1:, 1:]
    cos_phi = np.clip((np.trace(r3, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    phi = np.arccos(cos_phi)
    anti = np.stack(
        [
            r3[..., 2, 1] - r3[..., 1, 2],
            r3[..., 0, 2] - r3[..., 2, 0],
            r3[..., 1, 0] - r3[..., 0, 1],
        ],
        axis=-1,
    )
    # symmetric part minus cos(phi) I is (1 - cos phi) u u^T: any column with a large diagonal
    sym = (r3 + np.swapaxes(r3, -1, -2)) / 2.0 - cos_phi[..., None, None] * np.eye(3)
    col = np.argmax(np.diagonal(sym, axis1=-2, axis2=-1), axis=-1)
    from_sym = np.take_along_axis(sym, col[..., None, None], axis=-1)[..., 0]
    sign = np.where(np.sum(from_sym * anti, axis=-1) < 0, -1.0, 1.0)
    # the antisymmetric part (2 sin(phi) u) is accurate for phi <= pi/2, the symmetric one beyond
    raw = np.where((phi <= np.pi / 2)[..., None], anti, sign[..., None] * from_sym)
    n = np.linalg.norm(raw, axis=-1, keepdims=True)
    axis = np.where(n > 1e-12, raw / np.where(n > 1e-12, n, 1.0), [1.0, 0.0, 0.0])
    return axis, phi
