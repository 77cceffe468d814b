r"""Mueller matrices of polarisation elements (py_pol 1.3.0 sign convention).

Every constructor broadcasts its arguments over leading dims and returns a float64 array of
shape (..., 4, 4).  Angles are in radians.  Notation: :math:`c = \cos2\theta`,
:math:`s = \sin2\theta`, :math:`c_\delta = \cos\delta`, :math:`s_\delta = \sin\delta`.

* Frame rotation :math:`R(\theta)` = [[1,0,0,0],[0,c,s,0],[0,-s,c,0],[0,0,0,1]]; an element at
  azimuth :math:`\theta` is :math:`M(\theta) = R(-\theta)\,M_0\,R(\theta)`.
* A retarder whose fast eigenstate has Stokes direction :math:`\hat u` and retardance
  :math:`\delta` rotates the Poincaré sphere by :math:`-\delta` about :math:`\hat u`
  (right-hand rule).  So a QWP at 45° turns H into :math:`S_3 = +1` and a HWP at 22.5° turns H
  into +45° linear.  (Texts using :math:`e^{i(kz-\omega t)}` — Hecht, Fowles, Wikipedia — flip
  every :math:`s_\delta` term.)
* A rotator turns the azimuth by :math:`+\alpha`: :math:`M = R(-\alpha)`.  Note that py_pol has no
  rotator; its ``retarder_circular(2α, 'r')`` equals :math:`R(+\alpha)`.

Light passes elements in order; :func:`compose` multiplies them in the right order.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float, as_mueller, as_stokes, block4, unit_vectors
from .lorentz import rotation

__all__ = [
    "frame_rotation",
    "rotate_element",
    "apply_mueller",
    "compose",
    "identity",
    "attenuator",
    "retarder",
    "quarter_wave_plate",
    "half_wave_plate",
    "elliptical_retarder",
    "rotator",
    "faraday_rotation_angle",
    "faraday_rotator",
    "polarizer",
    "diattenuator",
    "elliptical_diattenuator",
    "depolarizer",
    "diattenuation",
    "diattenuation_vector",
    "polarizance",
    "depolarization_index",
    "is_nondepolarizing",
]


def frame_rotation(theta: ArrayLike) -> FloatArray:
    r"""Frame rotation :math:`R(\theta)` = [[1,0,0,0],[0,c,s,0],[0,-s,c,0],[0,0,0,1]],
    :math:`c=\cos2\theta`.
    """
    t = as_float(theta)
    c, s = np.cos(2 * t), np.sin(2 * t)
    out = np.zeros(t.shape + (4, 4))
    out[..., 0, 0] = 1.0
    out[..., 3, 3] = 1.0
    out[..., 1, 1] = c
    out[..., 1, 2] = s
    out[..., 2, 1] = -s
    out[..., 2, 2] = c
    return out


def rotate_element(mueller: ArrayLike, theta: ArrayLike) -> FloatArray:
    r"""Physically rotate an element by :math:`\theta`: :math:`R(-\theta)\,M\,R(\theta)`."""
    t = as_float(theta)
    return frame_rotation(-t) @ as_mueller(mueller) @ frame_rotation(t)


def apply_mueller(mueller: ArrayLike, stokes: ArrayLike) -> FloatArray:
    r"""Output Stokes vector :math:`S' = M S`, broadcasting leading dims of M and S."""
    m = as_mueller(mueller)
    s = as_stokes(stokes)
    return (m @ s[..., :, None])[..., 0]


def compose(*elements: ArrayLike) -> FloatArray:
    r"""System matrix of elements in the order light meets them: ``compose(M1, M2)`` = :math:`M_2
    M_1`.
    """
    if not elements:
        raise ValueError("compose needs at least one element")
    out = as_mueller(elements[0])
    for m in elements[1:]:
        out = as_mueller(m) @ out
    return out


def identity(shape: tuple[int, ...] = ()) -> FloatArray:
    """Identity Mueller matrices of the given batch shape (free space)."""
    return np.broadcast_to(np.eye(4), tuple(shape) + (4, 4)).copy()


def attenuator(transmittance: ArrayLike) -> FloatArray:
    r"""Polarisation-independent loss :math:`t\,I_4` (neutral density, insertion loss)."""
    t = as_float(transmittance)
    if np.any(t < 0):
        raise ValueError("transmittance must be non-negative")
    return t[..., None, None] * np.eye(4)


def retarder(theta: ArrayLike, delta: ArrayLike) -> FloatArray:
    r"""Linear retarder, fast axis at azimuth :math:`\theta`, retardance :math:`\delta`.

    .. math::

        M = \begin{pmatrix}
        1 & 0 & 0 & 0\\
        0 & c^2 + s^2 c_\delta & cs(1-c_\delta) & -s\,s_\delta\\
        0 & cs(1-c_\delta) & s^2 + c^2 c_\delta & c\,s_\delta\\
        0 & s\,s_\delta & -c\,s_\delta & c_\delta
        \end{pmatrix}

    (py_pol ``Mueller.retarder_linear(R=delta, azimuth=theta)``, pypolar ``op_retarder``.)
    The inverse is the transpose, ``retarder(theta, -delta)``.
    """
    t, d = np.broadcast_arrays(as_float(theta), as_float(delta))
    c, s = np.cos(2 * t), np.sin(2 * t)
    cd, sd = np.cos(d), np.sin(d)
    out = np.zeros(t.shape + (4, 4))
    out[..., 0, 0] = 1.0
    out[..., 1, 1] = c * c + s * s * cd
    out[..., 1, 2] = c * s * (1 - cd)
    out[..., 1, 3] = -s * sd
    out[..., 2, 1] = c * s * (1 - cd)
    out[..., 2, 2] = s * s + c * c * cd
    out[..., 2, 3] = c * sd
    out[..., 3, 1] = s * sd
    out[..., 3, 2] = -c * sd
    out[..., 3, 3] = cd
    return out


def quarter_wave_plate(theta: ArrayLike) -> FloatArray:
    r"""Quarter-wave plate, fast axis :math:`\theta`: ``retarder(theta, pi/2)``."""
    return retarder(theta, np.pi / 2)


def half_wave_plate(theta: ArrayLike) -> FloatArray:
    r"""Half-wave plate, fast axis :math:`\theta`: ``retarder(theta, pi)``; turns azimuth
    :math:`\psi` into :math:`2\theta-\psi`.
    """
    return retarder(theta, np.pi)


def elliptical_retarder(axis: ArrayLike, delta: ArrayLike) -> FloatArray:
    r"""General (elliptical) retarder: fast eigenstate with Stokes direction :math:`\hat u`,
    retardance :math:`\delta`.

    It is the Lorentz rotation by :math:`-\delta` about :math:`\hat u`:

    .. math:: M_{3\times3} = c_\delta I + (1-c_\delta)\hat u\hat u^T - s_\delta[\hat u]_\times .

    ``elliptical_retarder((cos2θ, sin2θ, 0), δ)`` equals ``retarder(θ, δ)``; the axis (0, 0, 1)
    (right circular fast state) gives a circular retarder.
    """
    return rotation(axis, -as_float(delta))


def rotator(alpha: ArrayLike) -> FloatArray:
    r"""Rotator turning the polarisation azimuth by :math:`+\alpha` (rotation by :math:`2\alpha`
    about :math:`S_3`).

    .. math:: M = R(-\alpha) = \begin{pmatrix}1&0&0&0\\0&\cos2\alpha&-\sin2\alpha&0\\
              0&\sin2\alpha&\cos2\alpha&0\\0&0&0&1\end{pmatrix}
    """
    return frame_rotation(-as_float(alpha))


def faraday_rotation_angle(verdet: ArrayLike, b_field: ArrayLike, length: ArrayLike) -> FloatArray:
    r"""Faraday rotation angle :math:`\alpha = V B L` (V in rad/(T·m), B in T, L in m).

    Non-reciprocal: the sense is fixed by B, not by the propagation direction, so a double pass
    (out and back through a mirror) rotates by :math:`2VBL` where optical activity cancels.
    """
    return as_float(verdet) * as_float(b_field) * as_float(length)


def faraday_rotator(verdet: ArrayLike, b_field: ArrayLike, length: ArrayLike) -> FloatArray:
    r"""Faraday rotator, one pass along +z: ``rotator(V * B * L)`` (same Mueller matrix as optical
    activity).
    """
    return rotator(faraday_rotation_angle(verdet, b_field, length))


def _diattenuator_from_axis(u: FloatArray, q: FloatArray, r: FloatArray) -> FloatArray:
    t = 0.5 * (q + r)
    d = 0.5 * (q - r)
    g = np.sqrt(q * r)
    outer = u[..., :, None] * u[..., None, :]
    m3 = g[..., None, None] * np.eye(3) + (t - g)[..., None, None] * outer
    return block4(t, d[..., None] * u, d[..., None] * u, m3)


def _check_transmittances(q: FloatArray, r: FloatArray) -> None:
    if np.any(~np.isfinite(q)) or np.any(~np.isfinite(r)):
        raise ValueError("transmittances must be finite")
    if np.any(r < 0) or np.any(q < r):
        raise ValueError("transmittances must satisfy q >= r >= 0")


def diattenuator(theta: ArrayLike, q: ArrayLike, r: ArrayLike) -> FloatArray:
    r"""Linear diattenuator: intensity transmittance q along azimuth :math:`\theta`, r orthogonal (q
    >= r >= 0).

    At :math:`\theta = 0` (Gil & Ossikovski 4.79; py_pol ``diattenuator_linear(Tmax=q, Tmin=r)``):

    .. math:: M_0 = \tfrac12\begin{pmatrix} q+r & q-r & 0 & 0\\ q-r & q+r & 0 & 0\\
              0 & 0 & 2\sqrt{qr} & 0\\ 0 & 0 & 0 & 2\sqrt{qr}\end{pmatrix}

    For r > 0 this equals :math:`\sqrt{qr}\,B(\hat u, \eta)`, :math:`\hat u = (c, s, 0)`,
    :math:`\eta = \mathrm{artanh}D = \tfrac12\ln(q/r)`, :math:`D = (q-r)/(q+r)`.
    """
    t, qq, rr = np.broadcast_arrays(as_float(theta), as_float(q), as_float(r))
    _check_transmittances(qq, rr)
    u = np.stack([np.cos(2 * t), np.sin(2 * t), np.zeros_like(t)], axis=-1)
    return _diattenuator_from_axis(u, qq, rr)


def polarizer(theta: ArrayLike, transmittance: ArrayLike = 1.0) -> FloatArray:
    r"""Ideal linear polariser at azimuth :math:`\theta`: ``diattenuator(theta, t, 0)``.

    .. math:: M = \tfrac{t}{2}\begin{pmatrix}1&c&s&0\\c&c^2&cs&0\\s&cs&s^2&0\\0&0&0&0\end{pmatrix}

    Rank 1, so not a Lorentz transformation (Malus: :math:`I = t\,I_0\cos^2(\psi-\theta)` for linear
    input).
    """
    t = as_float(transmittance)
    return diattenuator(theta, t, np.zeros_like(t))


def elliptical_diattenuator(axis: ArrayLike, q: ArrayLike, r: ArrayLike) -> FloatArray:
    r"""Homogeneous diattenuator whose high-transmission eigenstate has Stokes direction :math:`\hat
    u`.

    .. math:: M = \begin{pmatrix} T & D T\,\hat u^T \\ D T\,\hat u & \sqrt{qr}\,I + (T -
    \sqrt{qr})\,\hat u\hat u^T \end{pmatrix},
              \quad T = \tfrac{q+r}{2},\ D = \tfrac{q-r}{q+r}

    equal to :math:`\sqrt{qr}\,B(\hat u, \mathrm{artanh} D)` for r > 0.  Physically: a retarder
    mapping :math:`\hat u` onto a linear axis, a linear diattenuator, and the inverse retarder.
    """
    u = unit_vectors(axis, "axis")
    qq, rr = as_float(q), as_float(r)
    shape = np.broadcast_shapes(u.shape[:-1], qq.shape, rr.shape)
    qq, rr = np.broadcast_to(qq, shape), np.broadcast_to(rr, shape)
    _check_transmittances(qq, rr)
    return _diattenuator_from_axis(np.broadcast_to(u, shape + (3,)), qq, rr)


def depolarizer(factors: ArrayLike, transmittance: ArrayLike = 1.0) -> FloatArray:
    r"""Diagonal depolariser :math:`t\,\mathrm{diag}(1, a_1, a_2, a_3)`.

    ``factors`` is a scalar (isotropic: :math:`a_1=a_2=a_3=a`, DOP scaled by :math:`|a|`) or a
    (..., 3) array.  Requires :math:`|a_i| \le 1`.  ``depolarizer(0)`` is the perfect depoliser.
    Depolarisers are not Lorentz transformations: they pull ball points toward the origin.
    """
    a = as_float(factors)
    if a.ndim == 0 or a.shape[-1] != 3:
        a = np.repeat(a[..., None], 3, axis=-1)
    if np.any(np.abs(a) > 1):
        raise ValueError("depolarisation factors must satisfy |a_i| <= 1")
    t = as_float(transmittance)
    if np.any(t < 0):
        raise ValueError("transmittance must be non-negative")
    diag = np.concatenate([np.ones(a.shape[:-1] + (1,)), a], axis=-1)
    m = diag[..., :, None] * np.eye(4)
    return t[..., None, None] * m


def diattenuation_vector(mueller: ArrayLike) -> FloatArray:
    r"""Diattenuation vector :math:`\vec D = (M_{01}, M_{02}, M_{03})/M_{00}`."""
    m = as_mueller(mueller)
    return m[..., 0, 1:] / m[..., 0, 0, None]


def diattenuation(mueller: ArrayLike) -> FloatArray:
    r"""Diattenuation :math:`D = |\vec D|` (= (q - r)/(q + r) for a diattenuator)."""
    return np.linalg.norm(diattenuation_vector(mueller), axis=-1)


def polarizance(mueller: ArrayLike) -> FloatArray:
    r"""Polarizance vector :math:`\vec P = (M_{10}, M_{20}, M_{30})/M_{00}` (DOP produced from
    unpolarised light).
    """
    m = as_mueller(mueller)
    return m[..., 1:, 0] / m[..., 0, 0, None]


def depolarization_index(mueller: ArrayLike) -> FloatArray:
    r"""Gil–Bernabeu depolarisation index :math:`P_\Delta = \sqrt{\mathrm{tr}(M^TM) -
    M_{00}^2}\,/\,(\sqrt3\,M_{00})`.

    1 for non-depolarising matrices, 0 for the perfect depolariser.
    """
    m = as_mueller(mueller)
    tr = np.sum(m * m, axis=(-2, -1))
    return np.sqrt(np.maximum(tr - m[..., 0, 0] ** 2, 0.0)) / (np.sqrt(3.0) * m[..., 0, 0])


def is_nondepolarizing(mueller: ArrayLike, atol: float = 1e-9) -> np.ndarray:
    r"""True where :math:`\mathrm{tr}(M^TM) = 4M_{00}^2` within ``atol`` (relative): the
    Gil–Bernabeu criterion.
    """
    return np.abs(depolarization_index(mueller) - 1.0) <= atol
