r"""Lu–Chipman polar decomposition of a Mueller matrix.

.. math:: M = M_\Delta\,M_R\,M_D

(light meets the diattenuator first, then the retarder, then the depolariser; Lu & Chipman,
JOSA A 13:1106, 1996).  With :math:`m_{00} = M_{00}` and :math:`\vec D = \vec M_0/m_{00}`:

* :math:`M_D = m_{00}\begin{pmatrix}1 & \vec D^T\\ \vec D & m_D\end{pmatrix}`,
  :math:`m_D = \sqrt{1-D^2}\,I + (1-\sqrt{1-D^2})\,\hat D\hat D^T`
  (:math:`= m_{00}\sqrt{1-D^2}\,B(\hat D, \mathrm{artanh}D)`, a gain times a boost);
* :math:`M' = M M_D^{-1} = \begin{pmatrix}1 & 0\\ \vec P_\Delta & m'\end{pmatrix}`;
* :math:`m' = m_\Delta m_R` is the left polar decomposition of the 3x3 block, computed here with
  the SVD :math:`m' = U\Sigma V^T`: :math:`m_R = \pm U V^T`, :math:`m_\Delta = \pm U\Sigma U^T`,
  sign :math:`= \mathrm{sign}\det m'` so that :math:`\det m_R = +1`.  This equals Lu–Chipman's
  closed form :math:`m_\Delta = \pm\sqrt{m'm'^T}`.

For a non-depolarising M, :math:`M_\Delta` is the identity and :math:`M = g\,M_R\,B(\hat D,\eta)`.
(py_pol's ``decompose_polar`` is known to be wrong; this module does not rely on it.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_mueller

__all__ = ["PolarDecomposition", "polar_decomposition", "retardance", "lorentz_factors"]


@dataclass(frozen=True)
class PolarDecomposition:
    """Factors of :math:`M = M_\\Delta M_R M_D`, each of shape (..., 4, 4).

    Attributes
    ----------
    depolarizer : ndarray
        :math:`M_\\Delta` (unit :math:`M_{00}`, symmetric 3x3 block, polarizance column).
    retarder : ndarray
        :math:`M_R` (a rotation: orthogonal, det +1).
    diattenuator : ndarray
        :math:`M_D` (carries the overall transmittance :math:`M_{00}`).
    """

    depolarizer: FloatArray
    retarder: FloatArray
    diattenuator: FloatArray

    @property
    def product(self) -> FloatArray:
        """:math:`M_\\Delta M_R M_D`, which reproduces the decomposed matrix."""
        return self.depolarizer @ self.retarder @ self.diattenuator


def polar_decomposition(
    mueller: ArrayLike, max_diattenuation: float = 1.0 - 1e-12
) -> PolarDecomposition:
    """Lu–Chipman decomposition :math:`M = M_\\Delta M_R M_D` (see module docstring), batched.

    Raises
    ------
    ValueError
        If :math:`M_{00} \\le 0` or the diattenuation reaches ``max_diattenuation`` (an ideal
        polariser has a singular :math:`M_D` and no unique decomposition).
    """
    m = as_mueller(mueller)
    m00 = m[..., 0, 0]
    if np.any(~np.isfinite(m)) or np.any(m00 <= 0):
        raise ValueError("Mueller matrix must be finite with M00 > 0")
    mn = m / m00[..., None, None]
    dvec = mn[..., 0, 1:]
    d = np.linalg.norm(dvec, axis=-1)
    if np.any(d >= max_diattenuation):
        raise ValueError(
            f"diattenuation {float(np.max(d)):.6g} >= {max_diattenuation}: an ideal polariser "
            "has no polar decomposition with an invertible diattenuator"
        )
    root = np.sqrt(1.0 - d * d)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where(d > 0, (1.0 - root) / np.where(d > 0, d * d, 1.0), 0.5)
    outer = dvec[..., :, None] * dvec[..., None, :]
    m_d = root[..., None, None] * np.eye(3) + coef[..., None, None] * outer
    md_n = np.zeros(m.shape)
    md_n[..., 0, 0] = 1.0
    md_n[..., 0, 1:] = dvec
    md_n[..., 1:, 0] = dvec
    md_n[..., 1:, 1:] = m_d
    m_prime = mn @ np.linalg.inv(md_n)
    p_delta = m_prime[..., 1:, 0]
    mp = m_prime[..., 1:, 1:]
    u, sig, vt = np.linalg.svd(mp)
    det_mp = np.linalg.det(mp)
    k = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    neg = det_mp < 0
    # det m' > 0 (or singular): m_R = U diag(1,1,k) V^T, m_Delta = U Sigma U^T
    # det m' < 0 (Lu-Chipman sign choice): m_R = -U V^T, m_Delta = -U Sigma U^T
    fix = np.ones(sig.shape)
    fix[..., 2] = np.where(neg, 1.0, k)
    sgn = np.where(neg, -1.0, 1.0)[..., None, None]
    m_r = sgn * (u * fix[..., None, :]) @ vt
    m_delta = sgn * (u * sig[..., None, :]) @ np.swapaxes(u, -1, -2)
    dep = np.zeros(m.shape)
    dep[..., 0, 0] = 1.0
    dep[..., 1:, 0] = p_delta
    dep[..., 1:, 1:] = m_delta
    ret = np.zeros(m.shape)
    ret[..., 0, 0] = 1.0
    ret[..., 1:, 1:] = m_r
    return PolarDecomposition(dep, ret, m00[..., None, None] * md_n)


def retardance(retarder_mueller: ArrayLike) -> FloatArray:
    r"""Retardance :math:`R = \arccos(\mathrm{tr}(M_R)/2 - 1) \in [0, \pi]` of a pure retarder."""
    m = as_mueller(retarder_mueller)
    return np.arccos(np.clip(np.trace(m, axis1=-2, axis2=-1) / 2.0 - 1.0, -1.0, 1.0))


def lorentz_factors(mueller: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    r"""Split a non-depolarising M into gain, rotation, boost axis and rapidity.

    .. math:: M = g\,M_R\,B(\hat u, \eta),\quad g = M_{00}\sqrt{1-D^2},\quad
              \hat u = \hat D,\quad \eta = \mathrm{artanh}\,D

    Returns ``(gain, rotation_4x4, axis, rapidity)``.  The depolarising factor is discarded, so
    check :func:`rsgn.optics.mueller.is_nondepolarizing` first if that matters.
    """
    pd = polar_decomposition(mueller)
    m = as_mueller(mueller)
    dvec = m[..., 0, 1:] / m[..., 0, 0, None]
    d = np.linalg.norm(dvec, axis=-1)
    axis = np.where(d[..., None] > 0, dvec / np.where(d > 0, d, 1.0)[..., None], [1.0, 0.0, 0.0])
    return m[..., 0, 0] * np.sqrt(1.0 - d * d), pd.retarder, axis, np.arctanh(d)
