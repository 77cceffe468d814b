r"""Hyperbolic-distance readout from one intensity behind a diattenuator.

Input light :math:`S = I(\cosh\rho,\ \sinh\rho\,\hat n)` (Lorentz norm I, :math:`p = \tanh\rho`)
meets a diattenuator with principal transmittances :math:`q \ge r` along Stokes axis
:math:`\hat u`, i.e. :math:`M = \sqrt{qr}\,B(\hat u, \eta)`, :math:`\eta = \tfrac12\ln(q/r)`.
The detected intensity is the first row of M times S:

.. math::

    S_0' = \tfrac{q+r}{2}S_0 + \tfrac{q-r}{2}\,\hat u\cdot\vec S
         = \sqrt{qr}\;I\;\cosh d_H(P, Q),\qquad Q = (\cosh\eta,\ -\sinh\eta\,\hat u),

so the *node* Q read by the diattenuator sits opposite its high-transmission axis; in the
Poincaré ball it is :math:`y = -\tanh(\eta/2)\,\hat u`.  Inverting:
:math:`d_H = \mathrm{arcosh}\big(S_0' / (\sqrt{qr}\,I)\big)`, which needs the input's Lorentz norm
:math:`I = S_0\sqrt{1-p^2}` (known from the encoding or a reference measurement).

Any axis :math:`\hat u` is reachable with a retarder that maps :math:`\hat u` onto the axis of a
linear diattenuator at azimuth 0 (:func:`readout_retarder`, :func:`readout_chain`); the retarder
does not change :math:`S_0`.  Units: intensities in the caller's power unit, distances in units of
the curvature radius (curvature -1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float, as_mueller, as_stokes, as_vec3, unit_vectors
from .ballmaps import _check_open_ball
from .lorentz import rapidity_from_transmittances
from .mueller import compose, diattenuator, elliptical_retarder

__all__ = [
    "detected_intensity",
    "diattenuator_readout",
    "diattenuator_node",
    "diattenuator_node_poincare",
    "diattenuator_for_node",
    "expected_readout",
    "distance_from_readout",
    "readout_retarder",
    "readout_chain",
]


def detected_intensity(stokes: ArrayLike, mueller: ArrayLike) -> FloatArray:
    r"""Intensity on a polarisation-blind detector behind M: :math:`S_0' = \sum_j M_{0j} S_j`."""
    s = as_stokes(stokes)
    m = as_mueller(mueller)
    return np.sum(m[..., 0, :] * s, axis=-1)


def diattenuator_readout(
    stokes: ArrayLike, axis: ArrayLike, q: ArrayLike, r: ArrayLike
) -> FloatArray:
    r"""Detected intensity behind a diattenuator (axis :math:`\hat u`, transmittances q >= r).

    .. math:: S_0' = \tfrac{q+r}{2}\,S_0 + \tfrac{q-r}{2}\,\hat u\cdot\vec S
    """
    s = as_stokes(stokes)
    u = unit_vectors(axis, "axis")
    qq, rr = as_float(q), as_float(r)
    if np.any(rr < 0) or np.any(qq < rr):
        raise ValueError("transmittances must satisfy q >= r >= 0")
    return 0.5 * (qq + rr) * s[..., 0] + 0.5 * (qq - rr) * np.sum(u * s[..., 1:], axis=-1)


def diattenuator_node(axis: ArrayLike, q: ArrayLike, r: ArrayLike) -> FloatArray:
    r"""Hyperboloid point read by the diattenuator: :math:`Q = (\cosh\eta,\ -\sinh\eta\,\hat u)`."""
    u = unit_vectors(axis, "axis")
    eta = as_float(rapidity_from_transmittances(q, r))
    return np.concatenate([np.cosh(eta)[..., None], -np.sinh(eta)[..., None] * u], axis=-1)


def diattenuator_node_poincare(axis: ArrayLike, q: ArrayLike, r: ArrayLike) -> FloatArray:
    r"""Poincaré-ball point of the node: :math:`y = -\tanh(\eta/2)\,\hat u`."""
    u = unit_vectors(axis, "axis")
    eta = as_float(rapidity_from_transmittances(q, r))
    return -np.tanh(eta / 2.0)[..., None] * u


def diattenuator_for_node(
    y: ArrayLike, q_max: ArrayLike = 1.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Diattenuator (axis, q, r) whose node is the Poincaré point ``y`` (inverse of
    :func:`diattenuator_node_poincare`).

    .. math:: \eta = 2\,\mathrm{artanh}|y|,\quad \hat u = -y/|y|,\quad q = q_{max},\quad r =
    q\,e^{-2\eta}

    The required extinction ratio is :math:`q/r = e^{2\eta}`; check it against the device with
    :func:`rsgn.optics.devices.max_rapidity`.  For y = 0 the axis is (1, 0, 0) and r = q.
    """
    yp = as_vec3(y, "y")
    n2 = _check_open_ball(yp, "y")
    rad = np.sqrt(n2)
    eta = 2.0 * np.arctanh(rad)
    axis = np.where(
        rad[..., None] > 0, -yp / np.where(rad > 0, rad, 1.0)[..., None], [1.0, 0.0, 0.0]
    )
    qq = np.broadcast_to(as_float(q_max), eta.shape).astype(np.float64)
    if np.any(qq <= 0):
        raise ValueError("q_max must be positive")
    return axis, qq.copy(), qq * np.exp(-2.0 * eta)


def expected_readout(
    lorentz_norm: ArrayLike, distance: ArrayLike, q: ArrayLike, r: ArrayLike
) -> FloatArray:
    r"""Noise-free reading :math:`S_0' = \sqrt{qr}\,I\,\cosh d`."""
    return np.sqrt(as_float(q) * as_float(r)) * as_float(lorentz_norm) * np.cosh(as_float(distance))


def distance_from_readout(
    intensity: ArrayLike, lorentz_norm: ArrayLike, q: ArrayLike, r: ArrayLike
) -> FloatArray:
    r"""Invert a reading to the hyperbolic distance between input state and node.

    .. math:: d_H = \mathrm{arcosh}\!\left(\max\!\left(1,\ \frac{S_0'}{\sqrt{qr}\,I}\right)\right)

    Noisy readings below the minimum :math:`\sqrt{qr}\,I` are clipped to distance 0.  Sensitivity:
    :math:`\partial d/\partial\cosh d = 1/\sinh d`, so small distances are noise-sensitive.
    """
    scale = np.sqrt(as_float(q) * as_float(r)) * as_float(lorentz_norm)
    if np.any(scale <= 0):
        raise ValueError("need r > 0 and a partially polarised input (lorentz_norm > 0)")
    return np.arccosh(np.maximum(as_float(intensity) / scale, 1.0))


def readout_retarder(axis: ArrayLike) -> FloatArray:
    r"""Retarder (a Lorentz rotation) mapping the Stokes direction ``axis`` onto (1, 0, 0).

    Rotation about :math:`\hat k = \hat u\times\hat e_1` by :math:`\arccos(\hat u\cdot\hat e_1)`,
    i.e.
    ``elliptical_retarder(-k, angle)``.  For :math:`\hat u = -\hat e_1` it is a half-wave
    rotation about :math:`S_3` (a 90° rotator).
    """
    u = unit_vectors(axis, "axis")
    e1 = np.array([1.0, 0.0, 0.0])
    k = np.cross(u, e1)
    kn = np.linalg.norm(k, axis=-1)
    angle = np.arctan2(kn, u[..., 0])
    k_safe = np.where(
        kn[..., None] > 1e-15, k / np.where(kn > 1e-15, kn, 1.0)[..., None], [0.0, 0.0, 1.0]
    )
    return elliptical_retarder(-k_safe, angle)


def readout_chain(axis: ArrayLike, q: ArrayLike, r: ArrayLike) -> FloatArray:
    r"""Physical readout: ``readout_retarder(axis)`` then ``diattenuator(0, q, r)``.

    Its first row equals that of ``elliptical_diattenuator(axis, q, r)``, so the detected intensity
    is the same (the trailing inverse retarder of the elliptical diattenuator is not needed).
    """
    mr = readout_retarder(axis)
    md = diattenuator(0.0, q, r)
    return compose(mr, md)
