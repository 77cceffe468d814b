"""Link budget: the power a detector needs for a target SNR, splitter trees, integration
bandwidth, WDM spacing and chromatic retardance error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsgn.optics import (
    DetectorParams,
    chromatic_retardance_error,
    db_transmittance,
    integration_bandwidth,
    required_power,
    snr,
    snr_ceiling,
    splitter_stages,
    splitter_transmittance,
    wavelength_spacing,
)
from rsgn.optics.noise import ELEMENTARY_CHARGE

REF = DetectorParams(
    responsivity=1.2,
    dark_current=35e-9,
    load_resistance=50.0,
    temperature=300.0,
    rin_db_per_hz=-140.0,
)


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0, 40.8, 45.0])
@pytest.mark.parametrize("bandwidth", [1e8, 2.5e9])
def test_required_power_inverts_the_snr(snr_db: float, bandwidth: float) -> None:
    """SNR(required_power(s)) = s, and any less power falls short."""
    target = 10 ** (snr_db / 10)
    if target >= snr_ceiling(bandwidth, REF):
        with pytest.raises(ValueError, match="RIN caps the SNR"):
            required_power(target, bandwidth, REF)
        return
    p = required_power(target, bandwidth, REF)
    assert float(snr(p, bandwidth, REF)) == pytest.approx(target, rel=1e-9)
    assert float(snr(0.999 * p, bandwidth, REF)) < target


def test_shot_limited_and_rin_capped_limits() -> None:
    shot = DetectorParams(responsivity=1.0)  # no dark, thermal or RIN noise
    b, s = 1e9, 1e4
    assert required_power(s, b, shot) == pytest.approx(s * 2 * ELEMENTARY_CHARGE * b, rel=1e-12)
    assert snr_ceiling(b, REF) == pytest.approx(1 / (1e-14 * b))
    assert snr_ceiling(b, shot) == math.inf
    with pytest.raises(ValueError, match="RIN caps the SNR at 50.0 dB"):
        required_power(1e6, 1e9, REF)


def test_splitter_tree_and_losses() -> None:
    assert [splitter_stages(f) for f in (1, 2, 3, 4, 64, 65)] == [0, 1, 2, 2, 6, 7]
    assert splitter_transmittance(1, 0.3) == 1.0
    assert splitter_transmittance(64, 0.28) == pytest.approx(10 ** (-6 * 0.28 / 10) / 64)
    assert db_transmittance(1.0, 2.0) == pytest.approx(10**-0.3)
    with pytest.raises(ValueError):
        splitter_stages(0)
    with pytest.raises(ValueError):
        db_transmittance(-1.0)


def test_integration_bandwidth_and_wdm() -> None:
    assert float(integration_bandwidth(2e-10)) == pytest.approx(2.5e9)
    with pytest.raises(ValueError):
        integration_bandwidth(0.0)
    # 100 GHz at 1550 nm is 0.8 nm
    assert wavelength_spacing(100e9, 1550e-9) == pytest.approx(0.8014e-9, rel=1e-3)
    err = chromatic_retardance_error(np.pi, 0.8e-9, 1550e-9)
    assert float(err) == pytest.approx(np.pi * 0.8 / 1550)
