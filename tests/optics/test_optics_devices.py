"""Device limits: extinction ratio caps the rapidity; insertion loss; retarder errors."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    apply_mueller,
    clip_rapidity,
    db_to_ratio,
    device_diattenuator,
    device_polarizer,
    device_transmittances,
    diattenuation,
    insertion_transmittance,
    linear_stokes,
    max_diattenuation,
    max_rapidity,
    misaligned_retarder,
    perturbed_diattenuator,
    perturbed_retarder,
    ratio_to_db,
    retarder,
)
from rsgn.optics.lorentz import boost_parameters


@pytest.mark.parametrize(
    "db, eta, radius", [(20, 2.30, 0.818), (30, 3.45, 0.939), (40, 4.61, 0.980)]
)
def test_extinction_ratio_caps_rapidity(db: float, eta: float, radius: float) -> None:
    er = db_to_ratio(db)
    assert np.isclose(max_rapidity(er), eta, atol=0.01)
    assert np.isclose(np.tanh(max_rapidity(er) / 2), radius, atol=1e-3)
    assert np.isclose(max_diattenuation(er), (er - 1) / (er + 1))
    assert np.isclose(np.arctanh(max_diattenuation(er)), max_rapidity(er))


def test_db_round_trip() -> None:
    assert np.isclose(ratio_to_db(db_to_ratio(27.0)), 27.0)
    assert max_diattenuation(np.inf) == 1.0 and max_rapidity(1.0) == 0.0


def test_device_polarizer_extinction() -> None:
    m = device_polarizer(0.3, db_to_ratio(30), insertion_loss_db=0.5)
    t_pass = apply_mueller(m, linear_stokes(0.3))[0]
    t_block = apply_mueller(m, linear_stokes(0.3 + np.pi / 2))[0]
    assert np.isclose(t_pass, insertion_transmittance(0.5))
    assert np.isclose(t_pass / t_block, 1000.0)
    assert np.isclose(diattenuation(m), max_diattenuation(1000.0))


def test_device_diattenuator_clips_and_loses() -> None:
    er = db_to_ratio(20)
    eta = np.array([0.5, 2.0, 5.0])
    assert np.allclose(clip_rapidity(eta, er), [0.5, 2.0, max_rapidity(er)])
    q, r = device_transmittances(eta, er, insertion_loss_db=1.0)
    assert np.allclose(q, 10**-0.1)
    gain, _, rap = boost_parameters(device_diattenuator(0.0, eta, er, 1.0))
    assert np.allclose(rap, clip_rapidity(eta, er))
    assert np.allclose(gain, np.sqrt(q * r))


def test_misaligned_retarder() -> None:
    assert np.allclose(misaligned_retarder(0.2, 1.0, 0.01, -0.02), retarder(0.21, 0.98))


def test_perturbed_retarder_statistics(rng: np.random.Generator) -> None:
    n = 20000
    sig_a, sig_d = 0.01, 0.02
    m = perturbed_retarder(np.zeros(n), np.full(n, np.pi / 2), sig_a, sig_d, rng)
    # QWP at 0: M[3,3] = cos(delta) -> delta; M[1,3] = -sin(2 theta) sin(delta) -> theta
    delta = np.arccos(np.clip(m[:, 3, 3], -1, 1))
    theta = -0.5 * np.arcsin(m[:, 1, 3] / np.sin(delta))
    assert np.isclose(np.std(delta - np.pi / 2), sig_d, rtol=0.05)
    assert np.isclose(np.std(theta), sig_a, rtol=0.05)
    d = perturbed_diattenuator(np.zeros(n), 0.9, 0.1, sig_a, rng)
    assert np.isclose(np.std(0.5 * np.arctan2(d[:, 0, 2], d[:, 0, 1])), sig_a, rtol=0.05)
    assert np.allclose(perturbed_retarder(0.1, 0.2, 0.0, 0.0, rng), retarder(0.1, 0.2))


def test_device_errors() -> None:
    with pytest.raises(ValueError):
        max_rapidity(0.5)
    with pytest.raises(ValueError):
        insertion_transmittance(-1.0)
    with pytest.raises(ValueError):
        clip_rapidity(-0.1, 10.0)
    with pytest.raises(ValueError):
        perturbed_retarder(0.0, 0.0, -1.0, 0.0, np.random.default_rng(0))
