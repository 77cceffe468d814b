r"""Source encoder: partially polarised states by incoherent mixing of two pure beams.

An SLM (or any polarisation modulator) writes only pure states, which sit on the boundary of the
ball.  A state of degree of polarisation p and direction :math:`\hat n` is the incoherent sum of
two orthogonal pure beams (two sub-frames within one detector integration, or two mutually
incoherent sources) with power fractions :math:`(1 \pm p)/2`:

.. math::

    S = S_0\,\tfrac{1+p}{2}(1, \hat n) + S_0\,\tfrac{1-p}{2}(1, -\hat n) = S_0\,(1,\ p\,\hat n).

A power-split error :math:`\epsilon` (fraction of :math:`S_0` moved from the :math:`+\hat n` beam to
the :math:`-\hat n` beam) changes the DOP to :math:`p - 2\epsilon`.

A polarisation-state generator driven by b-bit converters writes only a grid of states
(:func:`quantized_drive`): each pure sub-frame's azimuth and ellipticity
(:math:`2\psi` on a grid of :math:`2\pi/2^b`, :math:`2\chi` on a grid of :math:`\pi/2^b`, 0
on both) and the two sub-frames' power transmissions :math:`w_\pm = (1 \pm p)/2` (each on a
grid of :math:`1/(2^b - 1)` over [0, 1]); the written state is then
:math:`S = S_0 (w_+ + w_-)\,(1,\ \tfrac{w_+ - w_-}{w_+ + w_-}\hat n_q)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._util import FloatArray, as_float, as_vec3, unit_vectors
from .ballmaps import poincare_to_dop_direction
from .jones import jones_from_direction
from .stokes import jones_to_stokes, stokes_from_angles, stokes_to_angles

__all__ = [
    "EncodedBeams",
    "mixing_weights",
    "encode_beams",
    "incoherent_sum",
    "encode_stokes",
    "encode_poincare",
    "quantized_drive",
]


@dataclass(frozen=True)
class EncodedBeams:
    """Two pure, mutually incoherent beams whose sum is the encoded state.

    Attributes
    ----------
    jones : ndarray, complex, shape (..., 2, 2)
        ``jones[..., k, :]`` is the Jones vector of beam k (k = 0 along +n, k = 1 along -n), with
        :math:`|E_k|^2` = its power.
    powers : ndarray, shape (..., 2)
        Power of each beam.
    """

    jones: NDArray[np.complex128]
    powers: FloatArray

    @property
    def stokes(self) -> FloatArray:
        """Stokes vector of the incoherent sum."""
        return incoherent_sum(self.jones)


def mixing_weights(dop: ArrayLike, split_error: ArrayLike = 0.0) -> FloatArray:
    r"""Power fractions :math:`((1+p)/2 - \epsilon,\ (1-p)/2 + \epsilon)` of the two beams, shape
    (..., 2).
    """
    p = as_float(dop)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("dop must lie in [0, 1]")
    e = as_float(split_error)
    w0 = 0.5 * (1.0 + p) - e
    w1 = 0.5 * (1.0 - p) + e
    w0, w1 = np.broadcast_arrays(w0, w1)
    if np.any(w0 < 0) or np.any(w1 < 0):
        raise ValueError("split_error makes a beam power negative")
    return np.stack([w0, w1], axis=-1)


def encode_beams(
    dop: ArrayLike, direction: ArrayLike, s0: ArrayLike = 1.0, split_error: ArrayLike = 0.0
) -> EncodedBeams:
    r"""The two pure beams (Jones vectors along :math:`\pm\hat n`) that encode (p, n̂, S_0)."""
    n = unit_vectors(direction, "direction")
    w = mixing_weights(dop, split_error) * as_float(s0)[..., None]
    shape = np.broadcast_shapes(n.shape[:-1], w.shape[:-1])
    n = np.broadcast_to(n, shape + (3,))
    w = np.broadcast_to(w, shape + (2,))
    e_plus = jones_from_direction(n, w[..., 0])
    e_minus = jones_from_direction(-n, w[..., 1])
    return EncodedBeams(np.stack([e_plus, e_minus], axis=-2), w.copy())


def incoherent_sum(jones: ArrayLike) -> FloatArray:
    r"""Stokes vector of mutually incoherent beams: :math:`S = \sum_k S(E_k)`; ``jones`` is (..., K,
    2).
    """
    return np.sum(jones_to_stokes(jones), axis=-2)


def encode_stokes(
    dop: ArrayLike, direction: ArrayLike, s0: ArrayLike = 1.0, split_error: ArrayLike = 0.0
) -> FloatArray:
    r"""Stokes vector :math:`S_0(1, p\hat n)` produced by mixing the two beams of
    :func:`encode_beams`.
    """
    return encode_beams(dop, direction, s0, split_error).stokes


def encode_poincare(
    y: ArrayLike, s0: ArrayLike | None = None, lorentz_norm: ArrayLike | None = None
) -> FloatArray:
    r"""Encode a Poincaré-ball point :math:`y` (p = 2|y|/(1+|y|^2), n̂ = y/|y|) by incoherent
    mixing.

    Normalise by total intensity ``s0`` (default 1) or by Lorentz norm ``lorentz_norm``
    (:math:`S_0 = I/\sqrt{1-p^2}`, what :func:`rsgn.optics.readout.distance_from_readout` needs).
    """
    if s0 is not None and lorentz_norm is not None:
        raise ValueError("give s0 or lorentz_norm, not both")
    p, n = poincare_to_dop_direction(as_vec3(y, "y"))
    if lorentz_norm is not None:
        if np.any(p >= 1):
            raise ValueError("y: boundary points have Lorentz norm 0")
        total = as_float(lorentz_norm) / np.sqrt(1.0 - p * p)
    else:
        total = as_float(1.0 if s0 is None else s0)
    return encode_stokes(p, n, total)


def _grid(x: FloatArray, step: float) -> FloatArray:
    return np.round(x / step) * step


def quantized_drive(
    dop: ArrayLike, direction: ArrayLike, bits: float, interior: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""The state a ``bits``-bit drive writes for (p, n̂) (module docstring).

    Returns the written degree of polarisation :math:`(w_+ - w_-)/(w_+ + w_-)`, its direction
    :math:`\hat n_q` (unit, shape (..., 3)) and the power factor :math:`w_+ + w_-` (1 when
    exact). ``interior`` keeps both sub-frame codes at least one level above 0, so the written
    state stays partially polarised (:math:`p < 1`: a finite Lorentz norm) however close to 1 the
    asked DOP is. ``bits = inf`` returns the state unchanged.
    """
    p = as_float(dop)
    n = unit_vectors(direction, "direction")
    p, _ = np.broadcast_arrays(p, n[..., 0])
    if np.isinf(bits):
        return p.copy(), n.copy(), np.ones_like(p)
    if bits < 1 or bits != int(bits):
        raise ValueError("bits must be an integer >= 1 (or inf)")
    psi, chi = stokes_to_angles(np.concatenate([np.ones(n.shape[:-1] + (1,)), n], axis=-1))
    two_psi = _grid(2.0 * psi, 2.0 * np.pi / 2.0**bits)
    two_chi = _grid(2.0 * chi, np.pi / 2.0**bits)
    nq = stokes_from_angles(0.5 * two_psi, 0.5 * two_chi)[..., 1:]
    levels = 2.0**bits - 1.0
    low = 1.0 if interior else 0.0
    w_plus = np.clip(np.round(0.5 * (1.0 + p) * levels), low, levels) / levels
    w_minus = np.clip(np.round(0.5 * (1.0 - p) * levels), low, levels) / levels
    total = w_plus + w_minus
    return (w_plus - w_minus) / np.where(total > 0, total, 1.0), nq, total
