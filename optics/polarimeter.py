r"""Division-of-amplitude/time polarimeter: analyser states, instrument matrix and Stokes inversion.

Measurement k passes the light through an analyser whose Mueller matrix has first row
:math:`w_k` and records the intensity :math:`I_k = w_k\cdot S`; stacked, :math:`I = W S`.
With four or more independent analysers the Stokes vector is recovered by
:math:`\hat S = W^{+} I` (:math:`W^{-1}` for K = 4), with noise covariance
:math:`\mathrm{Cov}(\hat S) = W^{+}\,\Sigma_I\,W^{+T}`.

The optimal 4-state analyser is the *tetrahedral* one: ideal elliptical polarisers whose
Stokes directions :math:`a_k` are the vertices of a regular tetrahedron inscribed in the sphere,
:math:`w_k = \tfrac12(1, a_k)`.  Its condition number is :math:`\kappa(W) = \sqrt3`, the minimum for
four measurements (Tyo, Appl. Opt. 41:619, 2002; Foreman & Goudail, Opt. Eng. 58:082410, 2019);
with i.i.d. intensity noise :math:`\sigma`, :math:`\sigma(\hat S_0) = \sigma` and
:math:`\sigma(\hat S_{1,2,3}) = \sqrt3\,\sigma`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float, as_mueller, as_stokes, unit_vectors
from .mueller import compose, polarizer
from .readout import readout_retarder

__all__ = [
    "TETRAHEDRON",
    "tetrahedral_directions",
    "analyzer_mueller",
    "instrument_matrix",
    "Polarimeter",
    "tetrahedral_polarimeter",
]

TETRAHEDRON: FloatArray = np.array(
    [[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]
) / np.sqrt(3.0)
TETRAHEDRON.setflags(write=False)


def tetrahedral_directions() -> FloatArray:
    """Four unit Stokes directions at the vertices of a regular tetrahedron, shape (4, 3)."""
    return TETRAHEDRON.copy()


def analyzer_mueller(direction: ArrayLike, transmittance: ArrayLike = 1.0) -> FloatArray:
    r"""Physical analyser passing the pure state :math:`\hat a`: retarder mapping :math:`\hat a` to
    H, then a polariser at 0.

    First row: :math:`\tfrac{t}{2}(1, \hat a)` (the trailing output state is horizontal).
    """
    a = unit_vectors(direction, "direction")
    return compose(readout_retarder(a), polarizer(0.0, transmittance))


def instrument_matrix(analyzers: ArrayLike) -> FloatArray:
    r"""Instrument matrix :math:`W` (K, 4) from K analyser Mueller matrices (K, 4, 4): row k = first
    row of analyser k.
    """
    m = as_mueller(analyzers)
    if m.ndim != 3:
        raise ValueError(f"analyzers must have shape (K, 4, 4), got {m.shape}")
    return m[:, 0, :].copy()


@dataclass(frozen=True)
class Polarimeter:
    """A polarimeter defined by its instrument matrix ``W`` (K x 4, K >= 4, rank 4)."""

    W: FloatArray
    _pinv: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        w = as_float(self.W)
        if w.ndim != 2 or w.shape[1] != 4 or w.shape[0] < 4:
            raise ValueError(f"W must have shape (K, 4) with K >= 4, got {w.shape}")
        if np.linalg.matrix_rank(w) < 4:
            raise ValueError("W must have rank 4 to recover all four Stokes parameters")
        object.__setattr__(self, "W", w)
        object.__setattr__(self, "_pinv", np.linalg.pinv(w))

    @property
    def condition_number(self) -> float:
        """2-norm condition number :math:`\\kappa(W) = \\sigma_{max}/\\sigma_{min}` (sqrt(3) when
        tetrahedral).
        """
        return float(np.linalg.cond(self.W))

    def measure(
        self,
        stokes: ArrayLike,
        noise_std: ArrayLike | None = None,
        rng: np.random.Generator | None = None,
    ) -> FloatArray:
        r"""Intensities :math:`I = W S` (shape (..., K)), plus optional Gaussian noise of std
        ``noise_std``.

        ``noise_std`` broadcasts against (..., K); ``rng`` is required when noise is added.
        """
        s = as_stokes(stokes)
        i = s @ self.W.T
        if noise_std is None:
            return i
        if rng is None:
            raise ValueError("pass a numpy Generator as rng to add noise")
        return i + rng.standard_normal(i.shape) * as_float(noise_std)

    def invert(self, intensities: ArrayLike) -> FloatArray:
        r"""Least-squares Stokes estimate :math:`\hat S = W^{+} I` (exact for noise-free data)."""
        i = as_float(intensities)
        if i.ndim == 0 or i.shape[-1] != self.W.shape[0]:
            raise ValueError(f"intensities must have a last axis of length {self.W.shape[0]}")
        return i @ self._pinv.T

    def covariance(self, intensity_cov: ArrayLike) -> FloatArray:
        r"""Stokes covariance :math:`W^{+}\Sigma_I W^{+T}`; a scalar or (K,) input means independent
        noise variances.
        """
        c = as_float(intensity_cov)
        if c.ndim < 2:
            c = np.diag(np.broadcast_to(c, (self.W.shape[0],)))
        return self._pinv @ c @ self._pinv.T


def tetrahedral_polarimeter(transmittance: float = 1.0) -> Polarimeter:
    r"""Polarimeter with the four tetrahedral analysers (:math:`W_{k} = \tfrac t2(1, a_k)`), built
    from :func:`analyzer_mueller`.
    """
    return Polarimeter(instrument_matrix(analyzer_mueller(TETRAHEDRON, transmittance)))
