r"""Optical nonlinear activations as power transfer functions (all powers in W, or any one unit).

EIT (electromagnetically induced transparency)
    A coupling beam of power :math:`P_c` (the linear layer's output) opens a transparency window
    for a probe; on resonance the weak-probe Λ-system solution gives

    .. math:: T(P_c) = \exp\!\big(-\mathrm{OD}/(1 + P_c/P_{sat})\big),\qquad P_{out} = T\,P_{probe},

    with :math:`P_{sat} = 4\gamma_{12}\gamma_{13}K`, :math:`P_c = K|\Omega_c|^2` (Zuo et al.,
    Optica 6:1132, 2019; closed form derived from the weak-probe susceptibility of Canora et al.,
    arXiv:2504.04009).  Zuo's exact OD and :math:`P_{sat}` are not published in reachable text;
    the group's notebook parameters give OD ≈ 50, :math:`P_{sat}` ≈ 0.09 µW.  The same form with the
    input as its own control is the saturable absorber
    :math:`P_{out} = P_{in}\exp(-\mathrm{OD}/(1+P_{in}/P_{sat}))`.

SBS (stimulated Brillouin scattering) — phenomenological, *unverified* against Slinkov et al.,
Nanophotonics 2025 (doi:10.1515/nanoph-2024-0513), which reports LeakyReLU, sigmoid and quadratic
shapes and up to 20 dB net gain but whose functional form was not reachable.  The model here is
the loss-free, counter-propagating Brillouin amplifier with pump depletion (Boyd, *Nonlinear
Optics*, ch. 9): :math:`dI_p/dz = dI_s/dz = -g_B I_p I_s`.  With pump power :math:`P_p` entering at
z = 0, seed (signal) power :math:`P_s` entering at z = L, small-signal exponent
:math:`g = G_B P_p` (:math:`G_B = g_B L / A_{eff}` in 1/W, so :math:`e^g` is the small-signal gain)
and :math:`R = P_{out}/P_p`,

.. math:: G = \frac{P_{out}}{P_s} = \frac{e^{(1-R)g} - R}{1 - R},

solved for R.  Signal as input: linear with slope :math:`e^g` (LeakyReLU-like) that saturates
toward :math:`P_s + P_p` (sigmoid-like).  Pump as input: :math:`P_{out} \approx P_s e^{G_B P_p}`
(exponential/quadratic-like at small :math:`G_B P_p`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._util import FloatArray, as_float

__all__ = [
    "eit_transmission",
    "eit_activation",
    "saturable_absorber",
    "sbs_gain",
    "sbs_amplifier",
    "db_to_gain_exponent",
]


def _check_nonneg(name: str, x: FloatArray) -> None:
    if np.any(~np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f"{name} must be finite and non-negative")


def eit_transmission(p_control: ArrayLike, od: ArrayLike, p_sat: ArrayLike) -> FloatArray:
    r"""EIT probe transmission :math:`T = \exp(-\mathrm{OD}/(1 + P_c/P_{sat}))`, from
    :math:`e^{-OD}` (dark) toward 1.
    """
    pc, d, ps = as_float(p_control), as_float(od), as_float(p_sat)
    _check_nonneg("p_control", pc)
    _check_nonneg("od", d)
    if np.any(ps <= 0):
        raise ValueError("p_sat must be positive")
    return np.exp(-d / (1.0 + pc / ps))


def eit_activation(
    p_control: ArrayLike, p_probe: ArrayLike, od: ArrayLike, p_sat: ArrayLike
) -> FloatArray:
    r"""EIT neuron output :math:`P_{out} = P_{probe}\,\exp(-\mathrm{OD}/(1 + P_c/P_{sat}))`."""
    pp = as_float(p_probe)
    _check_nonneg("p_probe", pp)
    return pp * eit_transmission(p_control, od, p_sat)


def saturable_absorber(p_in: ArrayLike, od: ArrayLike, p_sat: ArrayLike) -> FloatArray:
    r"""Saturable absorber :math:`P_{out} = P_{in}\exp(-\mathrm{OD}/(1 + P_{in}/P_{sat}))`."""
    return eit_activation(p_in, p_in, od, p_sat)


def db_to_gain_exponent(gain_db: ArrayLike) -> FloatArray:
    r"""Small-signal exponent :math:`g = \ln(10^{G_{dB}/10})` (20 dB -> 4.605)."""
    return as_float(gain_db) * np.log(10.0) / 10.0


def _excess(w: FloatArray, g: FloatArray) -> FloatArray:
    """(exp(w g) - 1) / w, continuous at w = 0 (value g)."""
    wg = w * g
    small = np.abs(wg) < 1e-8
    safe_w = np.where(small, 1.0, w)
    return np.where(small, g * (1.0 + 0.5 * wg), np.expm1(wg) / safe_w)


def sbs_gain(
    p_signal: ArrayLike, p_pump: ArrayLike, gain_per_watt: ArrayLike, iterations: int = 200
) -> FloatArray:
    r"""Saturated Brillouin gain :math:`G = P_{out}/P_s` of the depleted-pump amplifier (module
    docstring).

    Solves :math:`R = s\,G(R)` with :math:`s = P_s/P_p`,
    :math:`G(R) = 1 + (e^{(1-R)g} - 1)/(1-R)` (strictly decreasing in R, so the root in
    :math:`(0, 1+s)` is unique) by vectorised bisection.  :math:`G \to e^{g}` for
    :math:`P_s \to 0`, :math:`G \to 1` for :math:`P_s \gg P_p`.

    Parameters
    ----------
    p_signal, p_pump : array_like
        Seed and pump powers (W), non-negative; broadcast together.
    gain_per_watt : array_like
        :math:`G_B = g_B L/A_{eff}` (1/W); :math:`g = G_B P_p`.
    """
    ps, pp, gb = as_float(p_signal), as_float(p_pump), as_float(gain_per_watt)
    for name, x in (("p_signal", ps), ("p_pump", pp), ("gain_per_watt", gb)):
        _check_nonneg(name, x)
    ps, pp, gb = np.broadcast_arrays(ps, pp, gb)
    g = gb * pp
    out = np.exp(g)  # small-signal limit (also the P_s = 0 answer)
    live = (ps > 0) & (pp > 0)
    if not np.any(live):
        return np.where(pp > 0, out, 1.0)
    s = np.where(live, ps / np.where(pp > 0, pp, 1.0), 1.0)
    gg = np.where(live, g, 0.0)
    lo = np.zeros_like(s)
    hi = 1.0 + s
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        f = mid - s * (1.0 + _excess(1.0 - mid, gg))
        lo = np.where(f < 0, mid, lo)
        hi = np.where(f < 0, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(hi, 1.0)):
            break
    r = 0.5 * (lo + hi)
    gain = 1.0 + _excess(1.0 - r, gg)
    return np.where(live, gain, np.where(pp > 0, out, 1.0))


def sbs_amplifier(p_signal: ArrayLike, p_pump: ArrayLike, gain_per_watt: ArrayLike) -> FloatArray:
    r"""SBS activation: output signal power :math:`P_{out} = G\,P_s` with :func:`sbs_gain`.

    Bounded by energy conservation: :math:`P_s \le P_{out} \le P_s + P_p`.
    """
    return as_float(p_signal) * sbs_gain(p_signal, p_pump, gain_per_watt)
