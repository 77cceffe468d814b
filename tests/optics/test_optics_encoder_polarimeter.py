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


def test_quantized_drive_writes_grid_states() -> None:
    """A b-bit drive: the power transmissions lie on the (2^b - 1)-level grid, the azimuth and
    ellipticity on their grids (errors at most half a step), exact for bits = inf."""
    from rsgn.optics import quantized_drive, stokes_to_angles

    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 500)
    n = rng.normal(size=(500, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    pq, nq, total = quantized_drive(p, n, np.inf)
    assert np.array_equal(pq, p) and np.allclose(nq, n) and np.all(total == 1)
    bits = 6
    levels = 2**bits - 1
    pq, nq, total = quantized_drive(p, n, bits)
    w_plus, w_minus = 0.5 * total * (1 + pq), 0.5 * total * (1 - pq)
    assert np.allclose(w_plus * levels, np.round(w_plus * levels), atol=1e-9)
    assert np.allclose(w_minus * levels, np.round(w_minus * levels), atol=1e-9)
    assert np.all(np.abs(w_plus - 0.5 * (1 + p)) <= 0.5 / levels + 1e-12)
    assert np.allclose(np.linalg.norm(nq, axis=1), 1.0)
    s = np.concatenate([np.ones((500, 1)), n], axis=1)
    sq = np.concatenate([np.ones((500, 1)), nq], axis=1)
    (psi, chi), (psi_q, chi_q) = stokes_to_angles(s), stokes_to_angles(sq)
    d_az = np.angle(np.exp(2j * (psi_q - psi)))  # 2 psi error, wrapped
    assert np.all(np.abs(d_az) <= np.pi / 2**bits + 1e-9)
    assert np.all(np.abs(2 * (chi_q - chi)) <= 0.5 * np.pi / 2**bits + 1e-9)
    # a fully polarised state keeps p = 1 and total power 1
    one = quantized_drive(1.0, [0.3, 0.4, 0.5], 8)
    assert one[0] == 1.0 and one[2] == 1.0
    # ... unless the drive keeps both sub-frames lit: then the state stays inside the ball
    inner = quantized_drive(1.0, [0.3, 0.4, 0.5], 8, interior=True)
    assert inner[0] == pytest.approx(254 / 256) and inner[2] == pytest.approx(256 / 255)
