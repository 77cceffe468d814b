r"""Jones vectors and Jones matrices, and the Jones -> Mueller map.

Same convention as :mod:`rsgn.optics.stokes` (py_pol 1.3.0): the quarter-wave plate with its fast
axis along x is :math:`\mathrm{diag}(1, -i)`.  Elements at azimuth :math:`\theta` are
:math:`J(\theta) = R_J(-\theta)\,J_0\,R_J(\theta)` with
:math:`R_J(\theta) = [[\cos\theta, \sin\theta], [-\sin\theta, \cos\theta]]`.
Jones matrices are complex arrays of shape (..., 2, 2), batched over leading dims.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._util import FloatArray, as_float, unit_vectors

__all__ = [
    "jones_from_direction",
    "jones_rotation",
    "jones_retarder",
    "jones_diattenuator",
    "jones_rotator",
    "jones_to_mueller",
]

ComplexArray = NDArray[np.complex128]

# S = A (E kron E*), with E kron E* = (ExEx*, ExEy*, EyEx*, EyEy*).
_A = np.array(
    [[1, 0, 0, 1], [1, 0, 0, -1], [0, 1, 1, 0], [0, 1j, -1j, 0]],
    dtype=np.complex128,
)
_A_INV = np.linalg.inv(_A)


def jones_from_direction(direction: ArrayLike, intensity: ArrayLike = 1.0) -> ComplexArray:
    r"""Pure-state Jones vector whose Stokes vector is :math:`I\,(1, \hat n)`.

    With :math:`\hat n = (\cos\vartheta,\ \sin\vartheta\cos\phi,\ \sin\vartheta\sin\phi)`,

    .. math:: E = \sqrt{I}\,\big(\cos(\vartheta/2),\ \sin(\vartheta/2)\,e^{i\phi}\big).
    """
    n = unit_vectors(direction, "direction")
    theta = np.arccos(np.clip(n[..., 0], -1.0, 1.0))
    phi = np.arctan2(n[..., 2], n[..., 1])
    amp = np.sqrt(as_float(intensity))
    ex = amp * np.cos(theta / 2)
    ey = amp * np.sin(theta / 2) * np.exp(1j * phi)
    ex, ey = np.broadcast_arrays(ex, ey)
    return np.stack([ex.astype(np.complex128), ey], axis=-1)


def jones_rotation(theta: ArrayLike) -> FloatArray:
    r"""Frame rotation :math:`R_J(\theta) = [[\cos\theta, \sin\theta], [-\sin\theta, \cos\theta]]`.

    Batched over the leading dims of ``theta``.
    """
    t = as_float(theta)
    c, s = np.cos(t), np.sin(t)
    return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)


def _rotate(j0: ComplexArray, theta: FloatArray) -> ComplexArray:
    return jones_rotation(-theta) @ j0 @ jones_rotation(theta)


def jones_retarder(theta: ArrayLike, delta: ArrayLike) -> ComplexArray:
    r"""Linear retarder, fast axis :math:`\theta`, retardance :math:`\delta`:
    :math:`R_J(-\theta)\,\mathrm{diag}(1, e^{-i\delta})\,R_J(\theta)`."""
    t, d = np.broadcast_arrays(as_float(theta), as_float(delta))
    j0 = np.zeros(t.shape + (2, 2), dtype=np.complex128)
    j0[..., 0, 0] = 1.0
    j0[..., 1, 1] = np.exp(-1j * d)
    return _rotate(j0, t)


def jones_diattenuator(theta: ArrayLike, q: ArrayLike, r: ArrayLike) -> ComplexArray:
    r"""Linear diattenuator, intensity transmittance q along :math:`\theta`, r orthogonal:
    :math:`R_J(-\theta)\,\mathrm{diag}(\sqrt q, \sqrt r)\,R_J(\theta)`."""
    t, qq, rr = np.broadcast_arrays(as_float(theta), as_float(q), as_float(r))
    j0 = np.zeros(t.shape + (2, 2), dtype=np.complex128)
    j0[..., 0, 0] = np.sqrt(qq)
    j0[..., 1, 1] = np.sqrt(rr)
    return _rotate(j0, t)


def jones_rotator(alpha: ArrayLike) -> ComplexArray:
    r"""Rotator turning the azimuth by :math:`+\alpha`: :math:`R_J(-\alpha)`."""
    return jones_rotation(-as_float(alpha)).astype(np.complex128)


def jones_to_mueller(jones_matrix: ArrayLike) -> FloatArray:
    r"""Mueller matrix of a Jones matrix: :math:`M = A\,(J \otimes J^*)\,A^{-1}`.

    :math:`A` maps :math:`E\otimes E^*` to the Stokes vector of :mod:`rsgn.optics.stokes`.  The
    result satisfies :math:`M^T G M = |\det J|^2 G` (Gil & Ossikovski, *Polarized Light and the
    Mueller Matrix Approach*, p. 107).
    """
    j = np.asarray(jones_matrix, dtype=np.complex128)
    if j.ndim < 2 or j.shape[-2:] != (2, 2):
        raise ValueError(f"jones_matrix must have shape (..., 2, 2), got {j.shape}")
    k = np.einsum("...ij,...kl->...ikjl", j, np.conj(j)).reshape(j.shape[:-2] + (4, 4))
    return np.real(_A @ k @ _A_INV)
