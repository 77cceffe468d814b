"""Lorentz-group structure: M^T G M = |det J|^2 G, retarders are rotations, diattenuators
are boosts, and the Lu-Chipman polar decomposition."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    MINKOWSKI,
    boost,
    boost_parameters,
    compose,
    depolarizer,
    diattenuation,
    diattenuator,
    elliptical_diattenuator,
    elliptical_retarder,
    is_scaled_lorentz,
    jones_diattenuator,
    jones_retarder,
    jones_to_mueller,
    lorentz_defect,
    lorentz_factors,
    minkowski_inner,
    minkowski_metric,
    mueller_gain,
    polar_decomposition,
    polarizer,
    rapidity_from_diattenuation,
    rapidity_from_transmittances,
    retardance,
    retarder,
    rotation,
    rotation_parameters,
    rotator,
    transmittances_from_rapidity,
)

G = np.diag([1.0, -1.0, -1.0, -1.0])


def test_metric() -> None:
    assert np.array_equal(minkowski_metric(), G)
    assert np.array_equal(MINKOWSKI, G)
    assert np.isclose(minkowski_inner([2, 1, 0, 1], [3, 0, 1, 1]), 6 - 1)


def test_random_jones_mueller_is_scaled_lorentz(make) -> None:
    j = make.jones(300)
    m = jones_to_mueller(j)
    det2 = np.abs(np.linalg.det(j)) ** 2
    lhs = np.swapaxes(m, -1, -2) @ G @ m
    assert np.allclose(lhs, det2[:, None, None] * G, rtol=1e-10, atol=1e-10 * det2.max())
    assert np.allclose(mueller_gain(m), np.sqrt(det2))
    assert np.all(is_scaled_lorentz(m))
    # proper orthochronous: det(M/g) = +1 and (M/g)_00 >= 1
    lam = m / np.sqrt(det2)[:, None, None]
    assert np.allclose(np.linalg.det(lam), 1.0)
    assert np.all(lam[:, 0, 0] >= 1.0 - 1e-12)


def test_depolarizer_and_polarizer_are_not_lorentz() -> None:
    assert lorentz_defect(depolarizer(0.5)) > 0.1
    assert not is_scaled_lorentz(depolarizer([0.9, 0.9, 0.2]))
    assert np.isinf(lorentz_defect(polarizer(0.3)))


def test_retarders_are_rotations(rng: np.random.Generator) -> None:
    theta, delta = rng.uniform(-np.pi, np.pi, (2, 50))
    m = retarder(theta, delta)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(4))
    assert np.allclose(np.linalg.det(m), 1.0)
    assert np.allclose(m[:, 0, :], [1, 0, 0, 0]) and np.allclose(m[:, :, 0], [1, 0, 0, 0])
    axis, angle = rotation_parameters(m)
    assert np.allclose(rotation(axis, angle), m, atol=1e-9)
    # fast axis (cos2t, sin2t, 0), rotation by -delta: angle = |delta| mod 2pi folded to [0, pi]
    folded = np.abs((delta + np.pi) % (2 * np.pi) - np.pi)
    assert np.allclose(angle, folded)


def test_rotation_parameters_near_pi(make) -> None:
    u = make.unit(20)
    for phi in (0.0, 1e-6, 0.5, np.pi / 2, 2.5, np.pi - 1e-7, np.pi):
        axis, angle = rotation_parameters(rotation(u, phi))
        assert np.allclose(angle, phi, atol=1e-7)
        assert np.allclose(rotation(axis, angle), rotation(u, phi), atol=1e-9)


def test_rotator_is_rotation_about_s3() -> None:
    axis, angle = rotation_parameters(rotator(0.2))
    assert np.allclose(axis, [0, 0, 1]) and np.isclose(angle, 0.4)


def test_diattenuator_is_gain_times_boost(rng: np.random.Generator) -> None:
    theta = rng.uniform(-np.pi, np.pi, 40)
    q = rng.uniform(0.3, 1.0, 40)
    r = q * rng.uniform(0.01, 0.99, 40)
    m = diattenuator(theta, q, r)
    d = (q - r) / (q + r)
    eta = np.arctanh(d)
    u = np.stack([np.cos(2 * theta), np.sin(2 * theta), np.zeros(40)], -1)
    assert np.allclose(m, np.sqrt(q * r)[:, None, None] * boost(u, eta))
    assert np.allclose(eta, 0.5 * np.log(q / r))
    assert np.allclose(rapidity_from_transmittances(q, r), eta)
    assert np.allclose(rapidity_from_diattenuation(diattenuation(m)), eta)
    gain, axis, rap = boost_parameters(m)
    assert np.allclose(gain, np.sqrt(q * r)) and np.allclose(axis, u) and np.allclose(rap, eta)


def test_boost_is_lorentz_and_rapidities_add(rng: np.random.Generator, make) -> None:
    u = make.unit(10)
    a, b = rng.uniform(-3, 3, (2, 10))
    ba, bb = boost(u, a), boost(u, b)
    assert np.allclose(np.swapaxes(ba, -1, -2) @ G @ ba, G)
    assert np.allclose(ba @ bb, boost(u, a + b))
    # cascading collinear diattenuators: rapidities add, sqrt(q r) gains multiply
    m = diattenuator(0.0, 0.9, 0.3) @ diattenuator(0.0, 0.8, 0.1)
    gain, _, rap = boost_parameters(m)
    assert np.isclose(rap, 0.5 * np.log(3) + 0.5 * np.log(8))
    assert np.isclose(gain, np.sqrt(0.27) * np.sqrt(0.08))


def test_transmittances_from_rapidity() -> None:
    q, r = transmittances_from_rapidity(1.2, 0.9)
    assert np.isclose(q, 0.9) and np.isclose(0.5 * np.log(q / r), 1.2)


def test_elliptical_diattenuator_is_conjugated_boost(rng: np.random.Generator, make) -> None:
    u = make.unit(10)
    mr = elliptical_retarder(make.unit(10), rng.uniform(0, np.pi, 10))
    md = diattenuator(0.0, 0.9, 0.2)
    me = np.swapaxes(mr, -1, -2) @ md @ mr
    u_prime = np.einsum("...ji,j->...i", mr[:, 1:, 1:], [1.0, 0.0, 0.0])  # R3^T e1
    assert np.allclose(me, elliptical_diattenuator(u_prime, 0.9, 0.2))
    assert np.allclose(
        elliptical_diattenuator(u, 0.9, 0.2), np.sqrt(0.18) * boost(u, 0.5 * np.log(4.5))
    )


def test_polar_decomposition_nondepolarizing(rng: np.random.Generator, make) -> None:
    n = 60
    u = make.unit(n)
    q = rng.uniform(0.3, 1.0, n)
    r = q * rng.uniform(0.01, 0.95, n)
    md = elliptical_diattenuator(u, q, r)
    mr = elliptical_retarder(make.unit(n), rng.uniform(0, np.pi, n))
    m = mr @ md
    pd = polar_decomposition(m)
    assert np.allclose(pd.diattenuator, md)
    assert np.allclose(pd.retarder, mr, atol=1e-9)
    assert np.allclose(pd.depolarizer, np.eye(4), atol=1e-9)
    assert np.allclose(pd.product, m)
    gain, rot, axis, eta = lorentz_factors(m)
    assert np.allclose(gain, np.sqrt(q * r))
    assert np.allclose(axis, u)
    assert np.allclose(eta, 0.5 * np.log(q / r))
    assert np.allclose(gain[:, None, None] * rot @ boost(axis, eta), m)


def test_polar_decomposition_random_jones(make) -> None:
    m = jones_to_mueller(make.jones(100))
    pd = polar_decomposition(m)
    r3 = pd.retarder[:, 1:, 1:]
    assert np.allclose(r3 @ np.swapaxes(r3, -1, -2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(r3), 1.0)
    assert np.allclose(pd.depolarizer, np.eye(4), atol=1e-8)
    assert np.allclose(pd.product, m)


def test_polar_decomposition_with_depolarizer() -> None:
    mdep = depolarizer([0.8, 0.6, 0.4])
    mr = retarder(0.3, 1.2)
    md = diattenuator(-0.2, 0.9, 0.4)
    m = compose(md, mr, mdep)  # light: diattenuator, retarder, depolariser
    pd = polar_decomposition(m)
    assert np.allclose(pd.diattenuator, md)
    assert np.allclose(pd.retarder, mr, atol=1e-9)
    assert np.allclose(pd.depolarizer, mdep, atol=1e-9)
    assert np.isclose(retardance(pd.retarder), 1.2)


def test_polar_decomposition_negative_determinant() -> None:
    # a depolariser with a negative eigenvalue: Lu-Chipman puts the sign in M_Delta, det M_R = +1
    m = retarder(0.1, 0.7) @ np.diag([1.0, -0.5, 0.5, 0.5])
    pd = polar_decomposition(m)
    assert np.isclose(np.linalg.det(pd.retarder), 1.0)
    assert np.allclose(pd.product, m)
    assert np.allclose(pd.depolarizer, pd.depolarizer.swapaxes(-1, -2))


def test_polar_decomposition_rejects_polarizer() -> None:
    with pytest.raises(ValueError, match="polariser"):
        polar_decomposition(polarizer(0.0))
    with pytest.raises(ValueError):
        polar_decomposition(-np.eye(4))


def test_jones_retarder_diattenuator_product_decomposes() -> None:
    j = jones_retarder(0.4, 0.9) @ jones_diattenuator(0.1, 0.95, 0.2)
    pd = polar_decomposition(jones_to_mueller(j))
    assert np.allclose(pd.retarder, retarder(0.4, 0.9), atol=1e-9)
    assert np.allclose(pd.diattenuator, diattenuator(0.1, 0.95, 0.2))
