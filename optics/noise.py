r"""Photodetector and receiver noise: shot, dark, thermal (Johnson/TIA), RIN and ADC quantisation.

All noise terms are photocurrent variances in A² over a noise bandwidth B (Hz), for optical
power P (W) on a detector of responsivity :math:`\mathcal R` (A/W), photocurrent
:math:`I = \mathcal R P`:

* shot: :math:`2 q I B` (Schottky's shot noise of a photocurrent);
* dark: :math:`2 q I_d B`, the shot noise of the dark current;
* thermal: :math:`4 k_B T B / R_L`, with the feedback resistance :math:`R_f` for a TIA (the
  Johnson-Nyquist noise current variance, J. B. Johnson and H. Nyquist, Phys. Rev. 32, 1928);
* RIN: :math:`10^{\mathrm{RIN}/10}\,I^2 B`
  (``snalo/photonic_accelerator_scalability_analysis``);
* ADC: :math:`\Delta^2/12`, :math:`\Delta = FS/2^{\mathrm{ENOB}}`; SQNR = 6.02N + 1.76 dB and
  ENOB = (SNDR - 1.76)/6.02 (Walden figure of merit).

The sampler draws the first four as one Gaussian (the shot-noise Gaussian limit, valid for many
photons per sample), adds the dark-current mean :math:`I_d`, then quantises with the nominal
ADC resolution and adds the extra Gaussian noise that brings the ADC error to the ENOB figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float

__all__ = [
    "ELEMENTARY_CHARGE",
    "BOLTZMANN",
    "DetectorParams",
    "shot_noise_variance",
    "dark_noise_variance",
    "thermal_noise_variance",
    "rin_noise_variance",
    "adc_step",
    "adc_noise_variance",
    "sqnr_db",
    "enob_from_sndr",
    "enob_from_snr",
    "quantize",
    "noise_variances",
    "noise_std",
    "snr",
    "sample_photocurrent",
    "estimate_power",
]

ELEMENTARY_CHARGE = 1.602176634e-19  # C (SI exact)
BOLTZMANN = 1.380649e-23  # J/K (SI exact)


@dataclass(frozen=True)
class DetectorParams:
    """Receiver chain: photodiode, transimpedance/load, and ADC.

    Attributes
    ----------
    responsivity : float
        A/W.
    dark_current : float
        A.
    load_resistance : float
        Ohm (load resistor or TIA feedback resistance); ``inf`` disables thermal noise.
    temperature : float
        K.
    rin_db_per_hz : float
        Laser relative intensity noise, dB/Hz (``-inf`` disables RIN).
    adc_bits : float
        Nominal ADC resolution N (``inf`` = no quantisation).
    adc_enob : float
        Effective number of bits (<= ``adc_bits``); sets the ADC noise :math:`\\Delta^2/12`.
    adc_full_scale : float
        Photocurrent at ADC full scale, A (range [0, FS)).
    """

    responsivity: float = 1.0
    dark_current: float = 0.0
    load_resistance: float = float("inf")
    temperature: float = 300.0
    rin_db_per_hz: float = float("-inf")
    adc_bits: float = float("inf")
    adc_enob: float = float("inf")
    adc_full_scale: float = 1e-3

    def __post_init__(self) -> None:
        checks = [
            ("responsivity", self.responsivity > 0 and np.isfinite(self.responsivity)),
            ("dark_current", self.dark_current >= 0 and np.isfinite(self.dark_current)),
            ("load_resistance", self.load_resistance > 0),
            ("temperature", self.temperature >= 0 and np.isfinite(self.temperature)),
            ("rin_db_per_hz", self.rin_db_per_hz < 0 or self.rin_db_per_hz == float("-inf")),
            (
                "adc_bits",
                self.adc_bits >= 1 and (np.isinf(self.adc_bits) or self.adc_bits % 1 == 0),
            ),
            ("adc_enob", 0 < self.adc_enob <= self.adc_bits),
            ("adc_full_scale", self.adc_full_scale > 0 and np.isfinite(self.adc_full_scale)),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"DetectorParams.{name} = {getattr(self, name)!r} is out of range")


def shot_noise_variance(
    photocurrent: ArrayLike, bandwidth: ArrayLike, dark_current: ArrayLike = 0.0
) -> FloatArray:
    r"""Shot noise :math:`\sigma^2 = 2q(I + I_d)B` (A²)."""
    return (
        2.0
        * ELEMENTARY_CHARGE
        * (as_float(photocurrent) + as_float(dark_current))
        * as_float(bandwidth)
    )


def dark_noise_variance(dark_current: ArrayLike, bandwidth: ArrayLike) -> FloatArray:
    r"""Dark-current shot noise :math:`2 q I_d B` (A²)."""
    return shot_noise_variance(0.0, bandwidth, dark_current)


def thermal_noise_variance(
    bandwidth: ArrayLike, resistance: ArrayLike, temperature: ArrayLike
) -> FloatArray:
    r"""Johnson noise current of a load (or TIA feedback) resistor: :math:`4 k_B T B / R` (A²)."""
    return 4.0 * BOLTZMANN * as_float(temperature) * as_float(bandwidth) / as_float(resistance)


def rin_noise_variance(
    photocurrent: ArrayLike, bandwidth: ArrayLike, rin_db_per_hz: ArrayLike
) -> FloatArray:
    r"""Relative intensity noise :math:`10^{\mathrm{RIN}/10} I^2 B` (A²); caps SNR at
    :math:`1/(\mathrm{RIN}\,B)`.
    """
    return (
        10.0 ** (as_float(rin_db_per_hz) / 10.0) * as_float(photocurrent) ** 2 * as_float(bandwidth)
    )


def adc_step(full_scale: ArrayLike, bits: ArrayLike) -> FloatArray:
    r"""Quantisation step :math:`\Delta = FS / 2^N` (0 for N = inf)."""
    return as_float(full_scale) / 2.0 ** as_float(bits)


def adc_noise_variance(full_scale: ArrayLike, enob: ArrayLike) -> FloatArray:
    r"""ADC noise :math:`\Delta^2/12` with :math:`\Delta = FS/2^{\mathrm{ENOB}}`."""
    return adc_step(full_scale, enob) ** 2 / 12.0


def sqnr_db(bits: ArrayLike) -> FloatArray:
    r"""Full-scale-sine SQNR of an ideal N-bit ADC, :math:`20\log_{10}2^N + 10\log_{10}1.5 \approx
    6.02N + 1.76` dB.
    """
    return 20.0 * np.log10(2.0) * as_float(bits) + 10.0 * np.log10(1.5)


def enob_from_sndr(sndr_db: ArrayLike) -> FloatArray:
    r"""Effective number of bits :math:`(\mathrm{SNDR} - 1.76)/6.02` (exact inverse of
    :func:`sqnr_db`).
    """
    return (as_float(sndr_db) - 10.0 * np.log10(1.5)) / (20.0 * np.log10(2.0))


def enob_from_snr(snr_linear: ArrayLike) -> FloatArray:
    r"""ENOB of a linear power SNR: :func:`enob_from_sndr` of :math:`10\log_{10}\mathrm{SNR}`."""
    return enob_from_sndr(10.0 * np.log10(as_float(snr_linear)))


def quantize(x: ArrayLike, full_scale: ArrayLike, bits: ArrayLike) -> FloatArray:
    r"""Unipolar mid-tread quantiser on [0, FS):
    :math:`\Delta\,\mathrm{clip}(\mathrm{round}(x/\Delta), 0, 2^N - 1)`.

    Inside the range the error is at most :math:`\Delta/2`; inputs outside are clipped.
    ``bits = inf`` returns x unchanged.
    """
    xx = as_float(x)
    n = as_float(bits)
    if np.all(np.isinf(n)):
        return xx.copy()
    finite = n[np.isfinite(n)]
    if np.any(finite < 1) or np.any(finite != np.floor(finite)) or np.any(np.isnan(n)):
        raise ValueError("bits must be an integer >= 1 (or inf)")
    ideal = np.isinf(n)
    n_safe = np.where(ideal, 1.0, n)
    step = adc_step(full_scale, n_safe)
    codes = np.clip(np.round(xx / step), 0.0, 2.0**n_safe - 1.0)
    return np.where(ideal, xx, codes * step)


def noise_variances(
    power: ArrayLike, bandwidth: ArrayLike, det: DetectorParams
) -> dict[str, FloatArray]:
    r"""Per-term photocurrent variances (A²) at optical power ``power`` (W) and bandwidth
    ``bandwidth`` (Hz).

    Keys: ``shot`` (:math:`2q\mathcal RPB`), ``dark`` (:math:`2qI_dB`), ``thermal``
    (:math:`4k_BTB/R_L`), ``rin`` (:math:`10^{RIN/10}(\mathcal RP)^2B`), ``adc``
    (:math:`(FS/2^{ENOB})^2/12`, 0 without an ADC).
    """
    p, b = as_float(power), as_float(bandwidth)
    if np.any(p < 0) or np.any(b <= 0):
        raise ValueError("power must be >= 0 and bandwidth > 0")
    i = det.responsivity * p
    shape = np.broadcast_shapes(i.shape, b.shape)
    zeros = np.zeros(shape)
    return {
        "shot": zeros + shot_noise_variance(i, b),
        "dark": zeros + dark_noise_variance(det.dark_current, b),
        "thermal": zeros + thermal_noise_variance(b, det.load_resistance, det.temperature),
        "rin": zeros + rin_noise_variance(i, b, det.rin_db_per_hz),
        "adc": zeros + adc_noise_variance(det.adc_full_scale, det.adc_enob),
    }


def noise_std(power: ArrayLike, bandwidth: ArrayLike, det: DetectorParams) -> FloatArray:
    r"""Total photocurrent noise :math:`\sigma = \sqrt{\sum \sigma_k^2}` (A), terms of
    :func:`noise_variances`.
    """
    return np.sqrt(sum(noise_variances(power, bandwidth, det).values()))


def snr(power: ArrayLike, bandwidth: ArrayLike, det: DetectorParams) -> FloatArray:
    r"""Electrical power SNR :math:`(\mathcal R P)^2 / \sigma^2`."""
    i = det.responsivity * as_float(power)
    return i**2 / noise_std(power, bandwidth, det) ** 2


def sample_photocurrent(
    power: ArrayLike,
    bandwidth: ArrayLike,
    det: DetectorParams,
    rng: np.random.Generator,
    quantized: bool = True,
) -> FloatArray:
    r"""One noisy, digitised photocurrent sample per element of ``power`` (A).

    .. math:: \hat I = Q\big(\mathcal R P + I_d + \sigma_a\,\xi_1\big) + \sigma_{x}\,\xi_2

    with :math:`\sigma_a^2` = shot + dark + thermal + RIN, :math:`Q` the nominal-N quantiser of
    :func:`quantize`, and :math:`\sigma_x^2 = \tfrac{FS^2}{12}(4^{-\mathrm{ENOB}} - 4^{-N})` the
    ADC's non-quantisation error; ``quantized=False`` skips the ADC entirely.  Deterministic for a
    given seeded Generator.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed))"
        )
    var = noise_variances(power, bandwidth, det)
    analog_sd = np.sqrt(var["shot"] + var["dark"] + var["thermal"] + var["rin"])
    mean = det.responsivity * as_float(power) + det.dark_current
    i = mean + analog_sd * rng.standard_normal(analog_sd.shape)
    if not quantized or np.isinf(det.adc_bits):
        return i
    i = quantize(i, det.adc_full_scale, det.adc_bits)
    extra = det.adc_full_scale**2 / 12.0 * (4.0 ** (-det.adc_enob) - 4.0 ** (-det.adc_bits))
    if extra > 0:
        i = i + np.sqrt(extra) * rng.standard_normal(i.shape)
    return i


def estimate_power(photocurrent: ArrayLike, det: DetectorParams) -> FloatArray:
    r"""Optical power after dark subtraction: :math:`\hat P = (\hat I - I_d)/\mathcal R`."""
    return (as_float(photocurrent) - det.dark_current) / det.responsivity
