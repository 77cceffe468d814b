r"""Link budget of a fanned-out optical readout.

Receiver signal-to-noise ratio at optical power :math:`P` on a detector (photocurrent
:math:`I = \mathcal R P`, noise bandwidth :math:`B`; the analogue terms of
:func:`rsgn.optics.noise.noise_variances`):

.. math:: \mathrm{SNR}(P) = \frac{I^2}{2q(I + I_d)B + 4k_BTB/R_L + 10^{\mathrm{RIN}/10} I^2 B}

:func:`required_power` inverts it: the smallest :math:`P` with :math:`\mathrm{SNR}(P) \ge s`
is the positive root of

.. math:: (1 - s\,\rho B)\,I^2 - s\,2qB\,I - s\,(2qI_dB + 4k_BTB/R_L) = 0,
          \qquad \rho = 10^{\mathrm{RIN}/10},

and there is none when :math:`s\,\rho B \ge 1`: relative intensity noise caps the SNR at
:math:`1/(\rho B)` whatever the power.

A :math:`1\times F` splitter tree has :math:`\lceil\log_2 F\rceil` stages of excess loss
:math:`L_s` dB each (:func:`splitter_transmittance`):

.. math:: P_{out} = P_{in}\,10^{-L_s\lceil\log_2 F\rceil/10}/F,

losses in dB add along a link (:func:`db_transmittance`), and an integrate-and-dump receiver
of window :math:`t` has the equivalent noise bandwidth :math:`B = 1/(2t)`
(:func:`integration_bandwidth`). A retarder of retardance :math:`\delta = 2\pi\Delta n L/\lambda`
set at :math:`\lambda` shows :math:`\delta\,\Delta\lambda/\lambda` of retardance error at
:math:`\lambda + \Delta\lambda` (:func:`chromatic_retardance_error`, first order), the limit of
sending several wavelengths through one retarder.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float
from .energy import SPEED_OF_LIGHT
from .noise import ELEMENTARY_CHARGE, DetectorParams, thermal_noise_variance

__all__ = [
    "chromatic_retardance_error",
    "db_transmittance",
    "integration_bandwidth",
    "required_power",
    "snr_ceiling",
    "splitter_stages",
    "splitter_transmittance",
    "wavelength_spacing",
]


def db_transmittance(*losses_db: float) -> float:
    r"""Transmittance of losses in series: :math:`10^{-\sum L_k/10}` (each :math:`L_k \ge 0`)."""
    if any(not (x >= 0) for x in losses_db):
        raise ValueError("losses must be >= 0 dB")
    return 10.0 ** (-sum(losses_db) / 10.0)


def splitter_stages(fanout: int) -> int:
    r""":math:`\lceil\log_2 F\rceil` stages of 1 x 2 splitters for a fan-out of F >= 1."""
    if fanout < 1 or int(fanout) != fanout:
        raise ValueError("fanout must be an integer >= 1")
    return int(math.ceil(math.log2(fanout))) if fanout > 1 else 0


def splitter_transmittance(fanout: int, excess_loss_db: float) -> float:
    r"""Power to each output of a 1 x F tree per input power:
    :math:`10^{-L_s\lceil\log_2 F\rceil/10}/F`."""
    return db_transmittance(excess_loss_db * splitter_stages(fanout)) / fanout


def integration_bandwidth(window: ArrayLike) -> FloatArray:
    r"""Equivalent noise bandwidth :math:`B = 1/(2t)` of integrate-and-dump over ``window`` t."""
    t = as_float(window)
    if np.any(t <= 0):
        raise ValueError("the integration window must be > 0")
    return 0.5 / t


def snr_ceiling(bandwidth: float, det: DetectorParams) -> float:
    r"""The SNR that RIN allows at any power, :math:`1/(\rho B)` (inf without RIN)."""
    if math.isinf(det.rin_db_per_hz):
        return math.inf
    return 1.0 / (10.0 ** (det.rin_db_per_hz / 10.0) * bandwidth)


def required_power(snr: float, bandwidth: float, det: DetectorParams) -> float:
    r"""Smallest optical power (W) on the detector with analogue SNR >= ``snr`` (linear) over
    ``bandwidth`` (module docstring); ValueError when RIN caps the SNR below ``snr``."""
    if not snr > 0 or not bandwidth > 0:
        raise ValueError("snr and bandwidth must be > 0")
    ceiling = snr_ceiling(bandwidth, det)
    if snr >= ceiling:
        raise ValueError(
            f"RIN caps the SNR at {10 * math.log10(ceiling):.1f} dB over {bandwidth:.3g} Hz, "
            f"below the {10 * math.log10(snr):.1f} dB asked"
        )
    a = 1.0 - snr / ceiling
    b = -snr * 2.0 * ELEMENTARY_CHARGE * bandwidth
    c0 = 2.0 * ELEMENTARY_CHARGE * det.dark_current * bandwidth
    c0 += float(thermal_noise_variance(bandwidth, det.load_resistance, det.temperature))
    c = -snr * c0
    current = (-b + math.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
    return current / det.responsivity


def wavelength_spacing(frequency_spacing: float, wavelength: float) -> float:
    r"""Wavelength spacing :math:`\Delta\lambda = \lambda^2\Delta f/c` of a frequency grid (m)."""
    return wavelength * wavelength * frequency_spacing / SPEED_OF_LIGHT


def chromatic_retardance_error(
    retardance: ArrayLike, wavelength_offset: ArrayLike, wavelength: float
) -> FloatArray:
    r"""Retardance error :math:`|\delta|\,|\Delta\lambda|/\lambda` of a retarder set for
    ``wavelength`` and used at ``wavelength + wavelength_offset`` (first order)."""
    return np.abs(as_float(retardance)) * np.abs(as_float(wavelength_offset)) / wavelength
