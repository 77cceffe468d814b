"""Source encoder (incoherent mixing) and tetrahedral polarimeter."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    Polarimeter,
    analyzer_mueller,
    degree_of_polarization,
    encode_beams,
    encode_poincare,
    encode_stokes,
    jones_to_stokes,
    lorentz_norm,
    mixing_weights,
    polarization_direction,
    stokes_to_poincare,
    tetrahedral_directions,
    tetrahedral_polarimeter,
)


def test_encoder_dop_and_direction(rng: np.random.Generator, make) -> None:
    p = rng.uniform(0, 1, 100)
    n = make.unit(100)
    s = encode_stokes(p, n, 2.5)
    assert np.allclose(s[:, 0], 2.5)
    assert np.allclose(degree_of_polarization(s), p)
    assert np.allclose(polarization_direction(s)[p > 1e-6], n[p > 1e-6])


def test_encoder_beams_are_pure_and_orthogonal(make) -> None:
    n = make.unit(30)
    beams = encode_beams(0.6, n, 1.0)
    s = jones_to_stokes(beams.jones)  # (30, 2, 4)
    assert np.allclose(degree_of_polarization(s), 1.0)
    assert np.allclose(s[:, 0, 1:] / s[:, 0, :1], -s[:, 1, 1:] / s[:, 1, :1])
    # orthogonal Jones vectors: <E+, E-> = 0
    inner = np.sum(np.conj(beams.jones[:, 0]) * beams.jones[:, 1], -1)
    assert np.allclose(inner, 0.0)
    assert np.allclose(beams.powers, [0.8, 0.2])


def test_split_error_lowers_dop() -> None:
    s = encode_stokes(0.8, [0, 1, 0], 1.0, split_error=0.05)
    assert np.isclose(degree_of_polarization(s), 0.7)
    assert np.allclose(mixing_weights(0.8, 0.05), [0.85, 0.15])
    with pytest.raises(ValueError):
        mixing_weights(0.9, -0.1)
    with pytest.raises(ValueError):
        mixing_weights(1.1)


def test_encode_poincare(rng: np.random.Generator, make) -> None:
    y = rng.uniform(0, 0.95, 40)[:, None] * make.unit(40)
    s = encode_poincare(y, lorentz_norm=0.3)
    assert np.allclose(lorentz_norm(s), 0.3)
    assert np.allclose(stokes_to_poincare(s), y)
    assert np.allclose(encode_poincare(y)[:, 0], 1.0)


def test_tetrahedral_instrument_matrix() -> None:
    pol = tetrahedral_polarimeter()
    a = tetrahedral_directions()
    assert np.allclose(pol.W, 0.5 * np.concatenate([np.ones((4, 1)), a], -1))
    assert np.isclose(pol.condition_number, np.sqrt(3.0))
    assert np.allclose(a @ a.T, np.where(np.eye(4) > 0, 1.0, -1.0 / 3.0))


def test_polarimeter_inversion_exact(make) -> None:
    pol = tetrahedral_polarimeter(0.9)
    s = make.stokes(200)
    assert np.allclose(pol.invert(pol.measure(s)), s, atol=1e-12)
    # any physical analyser set of rank 4 works, including more than 4 measurements
    dirs = make.unit(6)
    w = analyzer_mueller(dirs)[:, 0, :]
    assert np.allclose(w, 0.5 * np.concatenate([np.ones((6, 1)), dirs], -1))
    assert np.allclose(Polarimeter(w).invert(s @ w.T), s, atol=1e-10)


def test_polarimeter_noise_covariance(rng: np.random.Generator) -> None:
    pol = tetrahedral_polarimeter()
    sigma = 0.01
    cov = pol.covariance(sigma**2)
    assert np.allclose(
        np.sqrt(np.diag(cov)), sigma * np.array([1, np.sqrt(3), np.sqrt(3), np.sqrt(3)])
    )
    n = 40000
    s = np.tile([1.0, 0.3, -0.2, 0.1], (n, 1))
    est = pol.invert(pol.measure(s, noise_std=sigma, rng=rng))
    emp = np.cov((est - s).T)
    # sample variance has relative std sqrt(2/n) = 0.7%; allow 5 sigma
    assert np.allclose(np.diag(emp), np.diag(cov), rtol=5 * np.sqrt(2 / n))


def test_polarimeter_errors() -> None:
    with pytest.raises(ValueError):
        Polarimeter(np.ones((4, 4)))
    with pytest.raises(ValueError):
        Polarimeter(np.eye(3))
    with pytest.raises(ValueError):
        tetrahedral_polarimeter().measure([1, 0, 0, 0], noise_std=0.1)
    with pytest.raises(ValueError):
        tetrahedral_polarimeter().invert(np.ones(3))
