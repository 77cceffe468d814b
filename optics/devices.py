r"""Device non-idealities: extinction ratio, insertion loss, retardance and angle errors.

* A real polariser/diattenuator with extinction ratio :math:`ER = q/r` caps the diattenuation at
  :math:`D_{max} = (ER-1)/(ER+1)` and the rapidity at :math:`\eta_{max} = \tfrac12\ln ER`
  (20 dB -> 2.30, 30 dB -> 3.45, 40 dB -> 4.61).
* Insertion loss IL (dB) scales the maximum transmittance: :math:`q = 10^{-IL/10}`.
* Retardance and azimuth errors perturb retarders; they are returned as new Mueller matrices.

Dimensionless ratios are linear unless the name says ``_db``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float
from .mueller import diattenuator, retarder

__all__ = [
    "db_to_ratio",
    "ratio_to_db",
    "insertion_transmittance",
    "max_diattenuation",
    "max_rapidity",
    "clip_rapidity",
    "device_transmittances",
    "device_diattenuator",
    "device_polarizer",
    "misaligned_retarder",
    "perturbed_retarder",
    "perturbed_diattenuator",
]


def db_to_ratio(db: ArrayLike) -> FloatArray:
    r""":math:`10^{x/10}` (an extinction ratio of 30 dB is 1000)."""
    return 10.0 ** (as_float(db) / 10.0)


def ratio_to_db(ratio: ArrayLike) -> FloatArray:
    r""":math:`10\log_{10} x`."""
    return 10.0 * np.log10(as_float(ratio))


def insertion_transmittance(insertion_loss_db: ArrayLike) -> FloatArray:
    r"""Peak transmittance :math:`10^{-IL/10}` of a device with insertion loss IL >= 0 dB."""
    il = as_float(insertion_loss_db)
    if np.any(il < 0):
        raise ValueError("insertion loss must be >= 0 dB")
    return 10.0 ** (-il / 10.0)


def _check_er(er: FloatArray) -> FloatArray:
    if np.any(np.isnan(er)) or np.any(er < 1):
        raise ValueError("extinction ratio must be >= 1 (linear)")
    return er


def max_diattenuation(extinction_ratio: ArrayLike) -> FloatArray:
    r""":math:`D_{max} = (ER - 1)/(ER + 1)` (1 for ER = inf)."""
    er = _check_er(as_float(extinction_ratio))
    return np.where(np.isinf(er), 1.0, (er - 1.0) / np.where(np.isinf(er), 1.0, er + 1.0))


def max_rapidity(extinction_ratio: ArrayLike) -> FloatArray:
    r""":math:`\eta_{max} = \mathrm{artanh}\,D_{max} = \tfrac12\ln ER`."""
    return 0.5 * np.log(_check_er(as_float(extinction_ratio)))


def clip_rapidity(rapidity: ArrayLike, extinction_ratio: ArrayLike) -> FloatArray:
    r"""Rapidity achievable by the device: :math:`\min(\eta, \eta_{max})` (requires :math:`\eta \ge
    0`).
    """
    eta = as_float(rapidity)
    if np.any(eta < 0):
        raise ValueError("rapidity must be >= 0 (flip the axis for negative boosts)")
    return np.minimum(eta, max_rapidity(extinction_ratio))


def device_transmittances(
    rapidity: ArrayLike, extinction_ratio: ArrayLike, insertion_loss_db: ArrayLike = 0.0
) -> tuple[FloatArray, FloatArray]:
    r"""Principal transmittances (q, r) realising rapidity :math:`\eta` on a real device.

    .. math:: q = 10^{-IL/10},\qquad r = q\,e^{-2\min(\eta, \eta_{max})}
    """
    eta = clip_rapidity(rapidity, extinction_ratio)
    q = np.broadcast_to(insertion_transmittance(insertion_loss_db), eta.shape).astype(np.float64)
    return q, q * np.exp(-2.0 * eta)


def device_diattenuator(
    theta: ArrayLike,
    rapidity: ArrayLike,
    extinction_ratio: ArrayLike,
    insertion_loss_db: ArrayLike = 0.0,
) -> FloatArray:
    """Linear diattenuator at azimuth theta, rapidity clipped and loss added as on a real device."""
    q, r = device_transmittances(rapidity, extinction_ratio, insertion_loss_db)
    return diattenuator(theta, q, r)


def device_polarizer(
    theta: ArrayLike, extinction_ratio: ArrayLike, insertion_loss_db: ArrayLike = 0.0
) -> FloatArray:
    r"""Real linear polariser: ``diattenuator(theta, q, q / ER)``, :math:`q = 10^{-IL/10}`."""
    er = _check_er(as_float(extinction_ratio))
    q = insertion_transmittance(insertion_loss_db)
    return diattenuator(theta, q, q / er)


def misaligned_retarder(
    theta: ArrayLike,
    delta: ArrayLike,
    angle_error: ArrayLike = 0.0,
    retardance_error: ArrayLike = 0.0,
) -> FloatArray:
    r"""Retarder with a fixed azimuth error and retardance error: ``retarder(theta + dθ, delta +
    dδ)``.
    """
    return retarder(
        as_float(theta) + as_float(angle_error), as_float(delta) + as_float(retardance_error)
    )


def perturbed_retarder(
    theta: ArrayLike,
    delta: ArrayLike,
    angle_sigma: float,
    retardance_sigma: float,
    rng: np.random.Generator,
) -> FloatArray:
    r"""Retarder with Gaussian errors :math:`d\theta \sim N(0, \sigma_\theta^2)`, :math:`d\delta
    \sim N(0, \sigma_\delta^2)` (rad).
    """
    if angle_sigma < 0 or retardance_sigma < 0:
        raise ValueError("error standard deviations must be >= 0")
    t, d = np.broadcast_arrays(as_float(theta), as_float(delta))
    dt = angle_sigma * rng.standard_normal(t.shape)
    dd = retardance_sigma * rng.standard_normal(t.shape)
    return misaligned_retarder(t, d, dt, dd)


def perturbed_diattenuator(
    theta: ArrayLike, q: ArrayLike, r: ArrayLike, angle_sigma: float, rng: np.random.Generator
) -> FloatArray:
    r"""Linear diattenuator with a Gaussian azimuth error :math:`N(0, \sigma_\theta^2)` (rad)."""
    if angle_sigma < 0:
        raise ValueError("angle_sigma must be >= 0")
    t, qq, rr = np.broadcast_arrays(as_float(theta), as_float(q), as_float(r))
    return diattenuator(t + angle_sigma * rng.standard_normal(t.shape), qq, rr)
