r"""Stokes vectors and the degree of polarisation.

Convention (py_pol 1.3.0 / pypolar 1.2.0, the :math:`e^{i(\omega t - kz)}` phase convention of
Azzam, Collett and Goldstein): for a Jones vector :math:`E = (E_x, E_y)`

.. math::

    S_0 = |E_x|^2 + |E_y|^2,\quad S_1 = |E_x|^2 - |E_y|^2,\quad
    S_2 = 2\,\mathrm{Re}(E_x E_y^*),\quad S_3 = 2\,\mathrm{Im}(E_x^* E_y).

So :math:`(1, i)/\sqrt{2}` has :math:`S_3 = +1`, which py_pol calls *right* circular.  A Stokes
vector is a float array whose last axis has length 4; every function broadcasts over leading dims.
Angles are in radians; intensities are in whatever power unit the caller uses (W in the presets).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float, as_stokes, unit_vectors

__all__ = [
    "jones_to_stokes",
    "stokes_from_angles",
    "stokes_to_angles",
    "stokes_from_direction",
    "linear_stokes",
    "circular_stokes",
    "unpolarized_stokes",
    "degree_of_polarization",
    "lorentz_norm",
    "polarization_direction",
    "is_physical_stokes",
]


def jones_to_stokes(jones: ArrayLike) -> FloatArray:
    r"""Stokes vector of a (fully polarised) Jones vector.

    Parameters
    ----------
    jones : array_like, complex, shape (..., 2)
        Field amplitudes :math:`(E_x, E_y)`; :math:`|E|^2` is the intensity.

    Returns
    -------
    ndarray, shape (..., 4)
        :math:`(|E_x|^2+|E_y|^2,\ |E_x|^2-|E_y|^2,\ 2\mathrm{Re}(E_xE_y^*),\
        2\mathrm{Im}(E_x^*E_y))`.
    """
    e = np.asarray(jones, dtype=np.complex128)
    if e.ndim == 0 or e.shape[-1] != 2:
        raise ValueError(f"jones must have a last axis of length 2, got shape {e.shape}")
    ex, ey = e[..., 0], e[..., 1]
    ax, ay = np.abs(ex) ** 2, np.abs(ey) ** 2
    return np.stack(
        [ax + ay, ax - ay, 2.0 * np.real(ex * np.conj(ey)), 2.0 * np.imag(np.conj(ex) * ey)],
        axis=-1,
    )


def stokes_from_angles(
    azimuth: ArrayLike, ellipticity: ArrayLike, dop: ArrayLike = 1.0, s0: ArrayLike = 1.0
) -> FloatArray:
    r"""Stokes vector from polarisation-ellipse azimuth :math:`\psi` and ellipticity angle
    :math:`\chi`.

    .. math::

        S = S_0\,(1,\ p\cos 2\chi\cos 2\psi,\ p\cos 2\chi\sin 2\psi,\ p\sin 2\chi)

    :math:`\chi > 0` is right-handed in the py_pol sense (:math:`S_3 > 0`).
    """
    psi, chi, p, i0 = np.broadcast_arrays(
        as_float(azimuth), as_float(ellipticity), as_float(dop), as_float(s0)
    )
    c2x = np.cos(2 * chi)
    return np.stack(
        [
            i0,
            i0 * p * c2x * np.cos(2 * psi),
            i0 * p * c2x * np.sin(2 * psi),
            i0 * p * np.sin(2 * chi),
        ],
        axis=-1,
    )


def stokes_to_angles(stokes: ArrayLike) -> tuple[FloatArray, FloatArray]:
    r"""Azimuth :math:`\psi \in (-\pi/2, \pi/2]` and ellipticity :math:`\chi \in [-\pi/4, \pi/4]`.

    .. math::

        \psi = \tfrac12\,\mathrm{atan2}(S_2, S_1),\qquad
        \chi = \tfrac12\,\mathrm{atan2}(S_3, \sqrt{S_1^2 + S_2^2})
    """
    s = as_stokes(stokes)
    psi = 0.5 * np.arctan2(s[..., 2], s[..., 1])
    chi = 0.5 * np.arctan2(s[..., 3], np.hypot(s[..., 1], s[..., 2]))
    return psi, chi


def stokes_from_direction(
    direction: ArrayLike, dop: ArrayLike = 1.0, s0: ArrayLike = 1.0
) -> FloatArray:
    r"""Stokes vector :math:`S_0\,(1,\ p\,\hat n)` for a direction :math:`\hat n` on the Poincaré
    sphere.

    ``direction`` is normalised; it must be non-zero.
    """
    n = unit_vectors(direction, "direction")
    p = as_float(dop)[..., None]
    i0 = as_float(s0)[..., None]
    vec = p * n
    shape = np.broadcast_shapes(vec.shape[:-1], i0.shape[:-1])
    vec = np.broadcast_to(vec, shape + (3,))
    return np.concatenate([np.broadcast_to(i0, shape + (1,)), i0 * vec], axis=-1)


def linear_stokes(theta: ArrayLike, s0: ArrayLike = 1.0) -> FloatArray:
    r"""Fully polarised linear light at azimuth :math:`\theta`: :math:`S_0(1, \cos2\theta,
    \sin2\theta, 0)`.
    """
    return stokes_from_angles(theta, 0.0, 1.0, s0)


def circular_stokes(handedness: str = "r", s0: ArrayLike = 1.0) -> FloatArray:
    """Circular light; ``'r'`` gives :math:`S_3 = +S_0` (py_pol 'r'), ``'l'`` gives :math:`-S_0`."""
    if handedness not in ("r", "l"):
        raise ValueError(f"handedness must be 'r' or 'l', got {handedness!r}")
    return stokes_from_angles(0.0, np.pi / 4 if handedness == "r" else -np.pi / 4, 1.0, s0)


def unpolarized_stokes(s0: ArrayLike = 1.0) -> FloatArray:
    """Unpolarised light :math:`(S_0, 0, 0, 0)`."""
    i0 = as_float(s0)
    z = np.zeros_like(i0)
    return np.stack([i0, z, z, z], axis=-1)


def degree_of_polarization(stokes: ArrayLike) -> FloatArray:
    r"""Degree of polarisation :math:`p = \sqrt{S_1^2 + S_2^2 + S_3^2} / S_0` (0 where :math:`S_0 =
    0`).
    """
    s = as_stokes(stokes)
    v = np.linalg.norm(s[..., 1:], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s[..., 0] > 0, v / np.where(s[..., 0] > 0, s[..., 0], 1.0), 0.0)


def lorentz_norm(stokes: ArrayLike) -> FloatArray:
    r"""Lorentz norm :math:`I = \sqrt{S_0^2 - |\vec S|^2} = S_0\sqrt{1-p^2} = 2\sqrt{\det\Phi}`.

    Negative round-off inside the root is clipped to 0 (fully polarised light has :math:`I = 0`).
    """
    s = as_stokes(stokes)
    q = s[..., 0] ** 2 - np.sum(s[..., 1:] ** 2, axis=-1)
    return np.sqrt(np.maximum(q, 0.0))


def polarization_direction(stokes: ArrayLike) -> FloatArray:
    r"""Unit direction :math:`\vec S / |\vec S|` on the Poincaré sphere (zeros for unpolarised
    light).
    """
    s = as_stokes(stokes)
    v = s[..., 1:]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 0, v / np.where(n > 0, n, 1.0), 0.0)


def is_physical_stokes(stokes: ArrayLike, atol: float = 1e-12) -> np.ndarray:
    r"""True where :math:`S_0 \ge 0` and :math:`|\vec S| \le S_0` (within ``atol``)."""
    s = as_stokes(stokes)
    v = np.linalg.norm(s[..., 1:], axis=-1)
    return (s[..., 0] >= -atol) & (v <= s[..., 0] + atol)
