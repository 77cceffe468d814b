"""EIT and SBS activations: limits, monotonicity, and the SBS coupled equations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from rsgn.optics import (
    db_to_gain_exponent,
    eit_activation,
    eit_transmission,
    saturable_absorber,
    sbs_amplifier,
    sbs_gain,
)


def test_eit_limits_and_shape() -> None:
    od, psat = 50.0, 0.09e-6
    assert np.isclose(eit_transmission(0.0, od, psat), np.exp(-od))
    assert np.isclose(eit_transmission(psat, od, psat), np.exp(-od / 2))
    assert eit_transmission(1.0, od, psat) > 0.99
    # T = 1/e at P_c = (OD - 1) P_sat (reference sheet: about 4.5 uW for OD 50, P_sat 0.09 uW)
    assert np.isclose(eit_transmission((od - 1) * psat, od, psat), np.exp(-1))
    p = np.logspace(-9, -3, 200)
    t = eit_transmission(p, od, psat)
    assert np.all(np.diff(t) > 0)
    assert np.allclose(eit_activation(p, 2e-6, od, psat), 2e-6 * t)


def test_saturable_absorber() -> None:
    p = np.array([0.0, 1.0, 1e6])
    out = saturable_absorber(p, 5.0, 1.0)
    assert np.allclose(out, [0.0, np.exp(-2.5), 1e6 * np.exp(-5 / (1 + 1e6))])


def test_eit_errors() -> None:
    with pytest.raises(ValueError):
        eit_transmission(-1.0, 5.0, 1.0)
    with pytest.raises(ValueError):
        eit_transmission(1.0, 5.0, 0.0)


def test_sbs_small_signal_and_saturation() -> None:
    g = db_to_gain_exponent(20.0)
    assert np.isclose(np.exp(g), 100.0)
    gb = g / 2.29e-3
    assert np.isclose(sbs_gain(1e-12, 2.29e-3, gb), 100.0, rtol=1e-6)
    assert np.isclose(sbs_gain(0.0, 2.29e-3, gb), 100.0)
    ps = np.logspace(-9, 0, 100)
    out = sbs_amplifier(ps, 2.29e-3, gb)
    assert np.all(np.diff(out) > 0)  # monotone activation
    assert np.all(out >= ps) and np.all(out <= ps + 2.29e-3 * (1 + 1e-12))  # energy conservation
    gain = out / ps
    assert np.all(np.diff(gain) < 0)  # gain saturates
    assert np.isclose(gain[-1], 1.0, atol=3e-3)
    assert np.isclose(sbs_gain(1e-3, 0.0, gb), 1.0)


def test_sbs_pump_as_input_is_exponential() -> None:
    pp = np.linspace(0, 2e-3, 20)
    gb = 2000.0
    gain = sbs_gain(1e-12, pp, gb)
    assert np.allclose(gain, np.exp(gb * pp), rtol=1e-6)


@pytest.mark.parametrize("ps", [1e-6, 1e-4, 1e-3, 5e-3])
def test_sbs_solves_coupled_equations(ps: float) -> None:
    """Integrate dIp/dz = dIs/dz = -g Ip Is from z = 0 with the solved output; the seed must come
    out at z = L.
    """
    pp, gb = 2e-3, 2000.0  # g = 4
    pout = float(sbs_amplifier(ps, pp, gb))

    def rhs(_z, y):
        return [-gb * y[0] * y[1], -gb * y[0] * y[1]]

    sol = solve_ivp(rhs, (0.0, 1.0), [pp, pout], rtol=1e-11, atol=1e-16)
    assert np.isclose(sol.y[1, -1], ps, rtol=1e-6)


def test_sbs_errors() -> None:
    with pytest.raises(ValueError):
        sbs_gain(-1.0, 1.0, 1.0)
