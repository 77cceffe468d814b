"""Detector noise: formulas, the reference budget, sampled statistics, ADC quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    DetectorParams,
    adc_noise_variance,
    adc_step,
    enob_from_sndr,
    enob_from_snr,
    estimate_power,
    noise_std,
    noise_variances,
    quantize,
    sample_photocurrent,
    snr,
    sqnr_db,
)
from rsgn.optics.noise import (
    BOLTZMANN,
    ELEMENTARY_CHARGE,
    rin_noise_variance,
    shot_noise_variance,
    thermal_noise_variance,
)

REF = DetectorParams(
    responsivity=1.0,
    dark_current=35e-9,
    load_resistance=50.0,
    temperature=300.0,
    rin_db_per_hz=-140.0,
)


def test_term_formulas() -> None:
    b = 10e9
    assert np.isclose(shot_noise_variance(1e-3, b), 2 * ELEMENTARY_CHARGE * 1e-3 * b)
    assert np.isclose(shot_noise_variance(1e-3, b, 1e-6), 2 * ELEMENTARY_CHARGE * (1e-3 + 1e-6) * b)
    # reference sheet: 50 ohm over 10 GHz -> 1.8 uA rms
    assert np.isclose(np.sqrt(thermal_noise_variance(b, 50.0, 300.0)), 1.82e-6, rtol=0.01)
    assert np.isclose(thermal_noise_variance(1.0, 1.0, 1.0), 4 * BOLTZMANN)
    assert np.isclose(rin_noise_variance(1e-3, b, -140.0), 1e-14 * 1e-6 * b)
    assert np.isclose(adc_step(1.0, 8), 1 / 256)
    assert np.isclose(adc_noise_variance(1.0, 8), (1 / 256) ** 2 / 12)
    assert adc_noise_variance(1.0, np.inf) == 0.0


@pytest.mark.parametrize("power, enob", [(10e-6, 2.2), (100e-6, 5.2), (1e-3, 6.3)])
def test_reference_budget(power: float, enob: float) -> None:
    """Reference sheet §7: 10 GHz, 50 ohm, RIN -140 dB/Hz -> ENOB 2.2 / 5.2 / 6.3 bits."""
    assert np.isclose(enob_from_snr(snr(power, 10e9, REF)), enob, atol=0.06)


def test_rin_caps_snr() -> None:
    det = DetectorParams(rin_db_per_hz=-140.0)
    assert np.isclose(snr(1.0, 10e9, det), 1e4, rtol=1e-3)  # 1/(RIN B) = 40 dB


def test_sqnr_enob_inverse() -> None:
    assert np.isclose(sqnr_db(8), 6.02 * 8 + 1.76, atol=0.01)
    assert np.isclose(enob_from_sndr(sqnr_db(7.3)), 7.3)


def test_noise_std_sums_terms() -> None:
    det = DetectorParams(
        dark_current=1e-9, load_resistance=1e3, rin_db_per_hz=-150, adc_bits=8, adc_enob=7
    )
    v = noise_variances(np.array([1e-5, 1e-4]), 1e9, det)
    assert set(v) == {"shot", "dark", "thermal", "rin", "adc"}
    assert np.allclose(noise_std([1e-5, 1e-4], 1e9, det) ** 2, sum(v.values()))
    assert np.allclose(v["adc"], (1e-3 / 2**7) ** 2 / 12)


def test_sampled_std_matches_formula(rng: np.random.Generator) -> None:
    n = 200_000
    power = np.full(n, 1e-4)
    sample = sample_photocurrent(power, 10e9, REF, rng, quantized=False)
    expected_sd = noise_std(1e-4, 10e9, REF)
    # std of a sample std: sigma / sqrt(2n) -> 0.16 %; allow 5 sigma
    assert np.isclose(sample.std(), expected_sd, rtol=5 / np.sqrt(2 * n))
    assert np.isclose(sample.mean(), 1e-4 + REF.dark_current, atol=5 * expected_sd / np.sqrt(n))
    assert np.isclose(estimate_power(sample, REF).mean(), 1e-4, atol=5 * expected_sd / np.sqrt(n))


def test_sampled_std_with_adc_enob(rng: np.random.Generator) -> None:
    det = DetectorParams(load_resistance=50.0, adc_bits=8, adc_enob=6.0, adc_full_scale=2e-4)
    n = 200_000
    power = rng.uniform(2e-5, 1.8e-4, n)  # spread over many codes so the error is uniform
    i = sample_photocurrent(power, 1e9, det, rng)
    err = i - det.responsivity * power
    expected = noise_std(power, 1e9, det)
    assert np.isclose(err.std(), np.sqrt(np.mean(expected**2)), rtol=0.01)


def test_seeded_sampler_is_deterministic() -> None:
    a = sample_photocurrent(np.full(10, 1e-4), 1e9, REF, np.random.default_rng(7))
    b = sample_photocurrent(np.full(10, 1e-4), 1e9, REF, np.random.default_rng(7))
    c = sample_photocurrent(np.full(10, 1e-4), 1e9, REF, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(TypeError):
        sample_photocurrent(np.ones(2), 1e9, REF, 7)


def test_quantizer_error_bound(rng: np.random.Generator) -> None:
    fs, bits = 1e-3, 6
    step = fs / 2**bits
    x = rng.uniform(0, fs - step / 2, 100_000)
    err = quantize(x, fs, bits) - x
    assert np.max(np.abs(err)) <= step / 2 + 1e-18
    # uniform quantisation error: variance step^2 / 12 (relative std of the estimate ~0.4 %)
    assert np.isclose(err.var(), step**2 / 12, rtol=0.03)
    codes = quantize(x, fs, bits) / step
    assert np.allclose(codes, np.round(codes)) and codes.max() <= 2**bits - 1
    # clipping outside the range
    assert quantize(-1.0, fs, bits) == 0.0
    assert np.isclose(quantize(2 * fs, fs, bits), fs - step)
    assert np.array_equal(quantize(x, fs, np.inf), x)


def test_full_scale_sine_sqnr() -> None:
    bits = 10
    fs = 1.0
    t = np.arange(100_000)
    x = fs / 2 + (fs / 2 - fs / 2**bits) * np.sin(2 * np.pi * t * 0.1234567)
    err = quantize(x, fs, bits) - x
    sig = np.var(x)
    measured = 10 * np.log10(sig / np.var(err))
    assert np.isclose(measured, sqnr_db(bits), atol=0.2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"responsivity": 0.0},
        {"dark_current": -1e-9},
        {"temperature": -1.0},
        {"rin_db_per_hz": 10.0},
        {"adc_bits": 8, "adc_enob": 9},
        {"adc_bits": 7.5, "adc_enob": 7},
        {"adc_full_scale": 0.0},
    ],
)
def test_detector_params_validation(kwargs) -> None:
    with pytest.raises(ValueError):
        DetectorParams(**kwargs)


def test_noise_input_errors() -> None:
    with pytest.raises(ValueError):
        noise_std(-1.0, 1e9, REF)
    with pytest.raises(ValueError):
        noise_std(1.0, 0.0, REF)
    with pytest.raises(ValueError):
        quantize(0.5, 1.0, 0)
