r"""Optical node activations (``propagate = 'eit'`` or ``'sbs'``), each inside its model's regime.

The node nonlinearity :math:`\sigma(z)`, :math:`z = (\alpha_i + \gamma|\tilde h_i| - \theta_i)/T`,
is replaced by an optical transfer on a log-power encoding: the encoder's power section drives
the activation medium with :math:`P = P_{ref}e^{u}`, :math:`u = \kappa z + c`, with :math:`c`,
:math:`\kappa` set so that :math:`f(0) = 1/2` and :math:`f'(0) = 1/4` like the sigmoid. The
power is set by a ``dac.bits`` drive, so :math:`u` spans :math:`\ln(2^b - 1)` around :math:`c`
(the drive's dynamic range; beyond it the activation saturates).

* **EIT** (cold atoms, [Zuo2019]; closed form of the weak-probe solution of [Canora2025]): the
  drive is the coupling beam, :math:`P_c = P_{sat}e^u`; a probe of power :math:`P_{pr}` is
  transmitted with :math:`T = \exp(-OD/(1 + P_c/P_{sat}))` and detected,
  :math:`f = (T - e^{-OD})/(1 - e^{-OD})`. Regime: the probe must be weak,
  :math:`P_{pr} \le 0.1\,\min(P_{sat}, P_c(f = 5\%))` (against the coupling wherever the output
  is not dark, and below saturation), and the window at least the medium's response time. The
  apparatus (cooling lasers, coils, vacuum) draws ``eit.apparatus_power`` while it runs.
* **SBS** (silica fibre, constants of one source, [Agrawal2013]): the drive is the Stokes seed,
  :math:`P_s = P_p e^u`, amplified by the pump :math:`P_p` in the depleted-pump model
  (:func:`rsgn.optics.sbs_gain`, gain exponent :math:`g = g_B P_p L_{eff}/A_{eff}`); a detector
  reads the transmitted pump :math:`P_p - (G - 1)P_s`, so
  :math:`f = (G - 1)P_s/P_p \in [0, 1)`. Regime: :math:`g` below the threshold gain at which the
  pump's own Stokes wave builds up from noise ([Kovalev2007]); the steady state needs the
  window to cover the pump's round trip :math:`2 n_g L/c` plus ten phonon lifetimes.

An out-of-regime preset is an RsgnError naming the regime.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from rsgn import optics
from rsgn.errors import RsgnError

WEAK_PROBE = 0.1
"""A probe is weak at most at this fraction of the coupling (and saturation) power."""
DARK = 0.05
"""The output fraction above which the EIT activation counts as not dark (weak-probe check)."""
STEADY_LIFETIMES = 10.0
"""Phonon lifetimes the SBS gain needs to settle after the pump has filled the fibre."""


def _bisect(g, target: float, lo: float = -60.0, hi: float = 60.0) -> float:
    """u with g(u) = target for an increasing g (200 halvings)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if g(np.array(mid)) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def transfer(kind: str, u: np.ndarray, preset: optics.OpticalPreset) -> np.ndarray:
    """Normalised output f in [0, 1] at log drive power ``u`` (module docstring)."""
    if kind == "eit":
        od, ps = preset.eit.optical_depth, preset.eit.saturation_power
        t = optics.eit_transmission(ps * np.exp(u), od, ps)
        floor = math.exp(-od)
        return (t - floor) / (1.0 - floor)
    sbs = preset.sbs
    ps = sbs.pump_power * np.exp(u)
    gain = optics.sbs_gain(ps, sbs.pump_power, sbs.gain_per_watt)
    return (gain - 1.0) * ps / sbs.pump_power


def check_regime(kind: str, preset: optics.OpticalPreset) -> None:
    """The activation's model within its regime (module docstring), else an RsgnError."""
    if kind == "eit":
        e = preset.eit
        if e.optical_depth <= 0:
            raise RsgnError("EIT activation needs eit.optical_depth > 0 in the optics preset")
        u_dark = _bisect(lambda u: transfer("eit", u, preset), DARK)
        limit = WEAK_PROBE * min(e.saturation_power, e.saturation_power * math.exp(u_dark))
        if e.probe_power > limit:
            raise RsgnError(
                f"EIT activation outside its regime: the probe ({e.probe_power:.3g} W) is not "
                f"weak; the weak-probe solution needs at most {limit:.3g} W "
                f"({WEAK_PROBE:g} of the saturation power and of the coupling power where the "
                "output leaves the dark floor)"
            )
        return
    s = preset.sbs
    if s.gain_exponent > s.threshold_gain:
        raise RsgnError(
            f"SBS activation outside its regime: the small-signal exponent g_B P_p L_eff / A_eff "
            f"= {s.gain_exponent:.3g} exceeds the threshold gain {s.threshold_gain:g} at which "
            "the pump's Stokes wave builds up from noise (lower sbs.pump_power or "
            "sbs.fibre_length)"
        )


def window(kind: str, preset: optics.OpticalPreset) -> float:
    """Integration window of one activation reading (s): EIT the medium's response time, SBS
    the pump's round trip plus ten phonon lifetimes; never shorter than a core window."""
    if kind == "eit":
        t = preset.eit.response_time
    else:
        s = preset.sbs
        transit = optics.propagation_delay(s.fibre_length, s.group_index)
        t = 2.0 * transit + STEADY_LIFETIMES * s.phonon_lifetime
    return max(t, preset.window)


@dataclass(frozen=True)
class LogPowerActivation:
    r"""An optical transfer :math:`g(u)` calibrated to :math:`f(z) = g(\kappa z + c)` with
    :math:`f(0) = 1/2`, :math:`f'(0) = 1/4`, the drive range and its detection."""

    kind: str
    kappa: float
    offset: float
    half_range: float
    """Half the drive's log-power range, ln(2^b - 1) / 2 (inf for exact drives)."""
    preset: optics.OpticalPreset

    @classmethod
    def calibrate(cls, kind: str, preset: optics.OpticalPreset) -> LogPowerActivation:
        r"""Regime check, bisection for :math:`g(c) = 1/2`, then :math:`\kappa = 1/(4 g'(c))`
        (central difference)."""
        check_regime(kind, preset)
        c = _bisect(lambda u: transfer(kind, u, preset), 0.5)
        h = 1e-4
        slope = float(
            transfer(kind, np.array(c + h), preset) - transfer(kind, np.array(c - h), preset)
        ) / (2 * h)
        if not slope > 0:
            raise RsgnError(f"{kind} activation: transfer function is flat at its midpoint")
        bits = preset.dac.bits
        half = math.inf if math.isinf(bits) else 0.5 * math.log(2.0**bits - 1.0)
        return cls(kind, 0.25 / slope, c, half, preset)

    @property
    def window(self) -> float:
        return window(self.kind, self.preset)

    @property
    def reference_power(self) -> float:
        """P_ref of the drive P = P_ref e^u: P_sat (EIT coupling) or P_p (SBS seed) (W)."""
        return (
            self.preset.eit.saturation_power if self.kind == "eit" else self.preset.sbs.pump_power
        )

    @property
    def drive_power_max(self) -> float:
        """Largest drive power the source must supply (W): the top of the drive range (the
        midpoint's power when the drives are exact)."""
        top = self.offset + (0.0 if math.isinf(self.half_range) else self.half_range)
        return self.reference_power * math.exp(top)

    @property
    def source_power(self) -> float:
        """Power of the beam the detector reads: the EIT probe or the SBS pump (W)."""
        return self.preset.eit.probe_power if self.kind == "eit" else self.preset.sbs.pump_power

    def __call__(self, z: np.ndarray) -> np.ndarray:
        u = self.kappa * z
        if math.isfinite(self.half_range):
            u = np.clip(u, -self.half_range, self.half_range)
        return transfer(self.kind, u + self.offset, self.preset)

    # ------------------------------------------------------------------ detection
    def output_power(self, f: np.ndarray) -> np.ndarray:
        """Optical power the activation's detector reads for output ``f`` (W)."""
        if self.kind == "eit":
            floor = math.exp(-self.preset.eit.optical_depth)
            return self.source_power * (floor + f * (1.0 - floor))
        return self.source_power * (1.0 - f)

    def from_power(self, power: np.ndarray) -> np.ndarray:
        """The output f of a detected power (inverse of :meth:`output_power`)."""
        if self.kind == "eit":
            floor = math.exp(-self.preset.eit.optical_depth)
            return (power / self.source_power - floor) / (1.0 - floor)
        return 1.0 - power / self.source_power

    def receiver(self) -> tuple[optics.DetectorParams, float]:
        """The activation receiver: its DetectorParams (full scale at the source power; EIT
        with its own feedback resistance) and noise bandwidth 1/(2 window)."""
        p = self.preset
        det = p.receiver_params(self.source_power)
        if self.kind == "eit":
            det = dataclasses.replace(det, load_resistance=p.eit.receiver_resistance)
        return det, 0.5 / self.window
