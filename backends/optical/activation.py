r"""Optical node activations (``propagate = 'eit'`` or ``'sbs'``).

The node nonlinearity :math:`\sigma(z)`, :math:`z = (\alpha_i + \gamma|\tilde h_i| - \theta_i)/T`,
is replaced by an optical transfer function on a log-power encoding
:math:`P = P_{ref}e^{\kappa z + c}`, with :math:`c, \kappa` set so that :math:`f(0) = 1/2` and
:math:`f'(0) = 1/4` like the sigmoid:

* EIT: :math:`f = (T - e^{-OD})/(1 - e^{-OD})`, :math:`T = \exp(-OD/(1 + P_c/P_{sat}))`;
* SBS: :math:`f = G(P_s) P_s / (P_s + P_p)` (saturating Brillouin amplifier, pump :math:`P_p`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rsgn import optics
from rsgn.errors import RsgnError

Z_CLIP = 30.0
"""Range of the log-power encoding of the pre-activation (|z| beyond: saturated)."""


@dataclass(frozen=True)
class LogPowerActivation:
    r"""An optical transfer function :math:`g(u)` on the log-power axis, calibrated to
    :math:`f(z) = g(\kappa z + c)` with :math:`f(0) = 1/2`, :math:`f'(0) = 1/4`."""

    kind: str
    kappa: float
    offset: float
    preset: optics.OpticalPreset

    @staticmethod
    def transfer(kind: str, u: np.ndarray, preset: optics.OpticalPreset) -> np.ndarray:
        """Normalised output in [0, 1] at log power ``u`` (see the module docstring)."""
        if kind == "eit":
            od, ps = preset.eit.optical_depth, preset.eit.saturation_power
            t = optics.eit_transmission(ps * np.exp(u), od, ps)
            floor = math.exp(-od)
            return (t - floor) / (1.0 - floor)
        pp = preset.sbs.pump_power
        sig = pp * np.exp(u)
        return optics.sbs_amplifier(sig, pp, preset.sbs.gain_per_watt) / (sig + pp)

    @classmethod
    def calibrate(cls, kind: str, preset: optics.OpticalPreset) -> LogPowerActivation:
        r"""Bisection for :math:`g(c) = 1/2`, then :math:`\kappa = 1/(4 g'(c))` (central
        difference)."""
        if kind == "eit" and preset.eit.optical_depth <= 0:
            raise RsgnError("EIT activation needs eit.optical_depth > 0 in the optics preset")
        lo, hi = -60.0, 60.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if cls.transfer(kind, np.array(mid), preset) < 0.5:
                lo = mid
            else:
                hi = mid
        c = 0.5 * (lo + hi)
        h = 1e-4
        slope = float(
            cls.transfer(kind, np.array(c + h), preset)
            - cls.transfer(kind, np.array(c - h), preset)
        ) / (2 * h)
        if not slope > 0:
            raise RsgnError(f"{kind} activation: transfer function is flat at its midpoint")
        return cls(kind, 0.25 / slope, c, preset)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        u = self.kappa * np.clip(z, -Z_CLIP, Z_CLIP) + self.offset
        return self.transfer(self.kind, u, self.preset)
