"""Mueller constructors: sign conventions, Jones consistency, Malus's law, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    apply_mueller,
    circular_stokes,
    compose,
    degree_of_polarization,
    depolarization_index,
    depolarizer,
    diattenuation,
    diattenuator,
    elliptical_diattenuator,
    elliptical_retarder,
    faraday_rotation_angle,
    faraday_rotator,
    half_wave_plate,
    is_nondepolarizing,
    jones_diattenuator,
    jones_from_direction,
    jones_retarder,
    jones_rotator,
    jones_to_mueller,
    jones_to_stokes,
    linear_stokes,
    polarizance,
    polarizer,
    quarter_wave_plate,
    retarder,
    rotate_element,
    rotator,
    stokes_from_angles,
    stokes_to_angles,
    unpolarized_stokes,
)

H = np.array([1.0, 1.0, 0.0, 0.0])


def test_jones_to_stokes_convention() -> None:
    assert np.allclose(jones_to_stokes([1, 1j]) / 2, [1, 0, 0, 1])  # (1, i)/sqrt2 is S3 = +1
    assert np.allclose(jones_to_stokes([1, 1]) / 2, [1, 0, 1, 0])
    assert np.allclose(jones_to_stokes([0, 1]), [1, -1, 0, 0])
    assert np.allclose(circular_stokes("r"), [1, 0, 0, 1])
    assert np.allclose(circular_stokes("l", 2.0), [2, 0, 0, -2])


def test_qwp_and_hwp_conventions() -> None:
    assert np.allclose(apply_mueller(quarter_wave_plate(np.pi / 4), H), [1, 0, 0, 1])
    assert np.allclose(apply_mueller(half_wave_plate(np.pi / 8), H), [1, 0, 1, 0])
    # Jones QWP with fast axis x is diag(1, -i)
    assert np.allclose(jones_retarder(0.0, np.pi / 2), np.diag([1, -1j]))


def test_hwp_reflects_azimuth(rng: np.random.Generator) -> None:
    theta, psi = rng.uniform(-np.pi, np.pi, (2, 50))
    out = apply_mueller(half_wave_plate(theta), linear_stokes(psi))
    assert np.allclose(out, linear_stokes(2 * theta - psi), atol=1e-12)


def test_rotator_turns_azimuth_positive(rng: np.random.Generator) -> None:
    alpha, psi = rng.uniform(-np.pi, np.pi, (2, 50))
    out = apply_mueller(rotator(alpha), linear_stokes(psi))
    assert np.allclose(out, linear_stokes(psi + alpha), atol=1e-12)


def test_mueller_matches_jones(rng: np.random.Generator) -> None:
    theta, delta = rng.uniform(-np.pi, np.pi, (2, 40))
    q = rng.uniform(0.2, 1.0, 40)
    r = q * rng.uniform(0.0, 1.0, 40)
    assert np.allclose(jones_to_mueller(jones_retarder(theta, delta)), retarder(theta, delta))
    assert np.allclose(jones_to_mueller(jones_diattenuator(theta, q, r)), diattenuator(theta, q, r))
    assert np.allclose(jones_to_mueller(jones_rotator(theta)), rotator(theta))


def test_mueller_acts_like_jones_on_states(rng: np.random.Generator) -> None:
    n = rng.standard_normal((30, 3))
    e = jones_from_direction(n, 1.7)
    assert np.allclose(jones_to_stokes(e)[..., 0], 1.7)
    j = jones_retarder(0.3, 1.1) @ jones_diattenuator(-0.4, 0.8, 0.3)
    out_j = jones_to_stokes((j @ e[..., None])[..., 0])
    out_m = apply_mueller(jones_to_mueller(j), jones_to_stokes(e))
    assert np.allclose(out_j, out_m)


def test_retarder_inverse_is_transpose() -> None:
    theta, delta = 0.37, 1.3
    m = retarder(theta, delta)
    assert np.allclose(m @ m.T, np.eye(4))
    assert np.allclose(m.T, retarder(theta, -delta))
    assert np.allclose(m.T, retarder(theta + np.pi / 2, delta))


def test_elliptical_retarder_reduces_to_linear(rng: np.random.Generator) -> None:
    theta, delta = rng.uniform(-np.pi, np.pi, (2, 20))
    axis = np.stack([np.cos(2 * theta), np.sin(2 * theta), 0 * theta], -1)
    assert np.allclose(elliptical_retarder(axis, delta), retarder(theta, delta))


def test_elliptical_retarder_fixes_its_fast_state(rng: np.random.Generator) -> None:
    u = rng.standard_normal((10, 3))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    m = elliptical_retarder(u, 0.9)
    s = np.concatenate([np.ones((10, 1)), u], -1)
    assert np.allclose(apply_mueller(m, s), s)


def test_circular_retarder_is_rotator() -> None:
    # a circular retarder (fast state S3 = +1) of retardance d rotates by -d about S3
    assert np.allclose(elliptical_retarder([0, 0, 1], 0.6), rotator(-0.3))


def test_rotate_element_matches_azimuth() -> None:
    assert np.allclose(rotate_element(retarder(0.0, 0.8), 0.3), retarder(0.3, 0.8))
    assert np.allclose(
        rotate_element(diattenuator(0.0, 0.9, 0.2), -0.7), diattenuator(-0.7, 0.9, 0.2)
    )


def test_malus_law(rng: np.random.Generator) -> None:
    theta, psi = rng.uniform(-np.pi, np.pi, (2, 100))
    i0 = rng.uniform(0.1, 3.0, 100)
    out = apply_mueller(polarizer(theta), linear_stokes(psi, i0))
    assert np.allclose(out[..., 0], i0 * np.cos(psi - theta) ** 2)
    # and the output is linear light along theta
    keep = out[..., 0] > 1e-3
    pol = out[keep]
    assert np.allclose(pol[:, 1] / pol[:, 0], np.cos(2 * theta[keep]))
    assert np.allclose(pol[:, 2] / pol[:, 0], np.sin(2 * theta[keep]))


def test_unpolarized_through_polarizer_halves() -> None:
    out = apply_mueller(polarizer(0.2, 0.9), unpolarized_stokes(2.0))
    assert np.isclose(out[0], 0.9)
    assert np.isclose(degree_of_polarization(out), 1.0)


def test_diattenuator_transmittances(rng: np.random.Generator) -> None:
    theta = rng.uniform(-np.pi, np.pi, 20)
    q, r = 0.8, 0.05
    m = diattenuator(theta, q, r)
    assert np.allclose(apply_mueller(m, linear_stokes(theta))[..., 0], q)
    assert np.allclose(apply_mueller(m, linear_stokes(theta + np.pi / 2))[..., 0], r)
    assert np.allclose(diattenuation(m), (q - r) / (q + r))
    assert np.allclose(
        polarizance(m)[..., :2],
        (q - r) / (q + r) * np.stack([np.cos(2 * theta), np.sin(2 * theta)], -1),
    )


def test_elliptical_diattenuator_transmits_its_eigenstates(rng: np.random.Generator) -> None:
    u = rng.standard_normal((15, 3))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    m = elliptical_diattenuator(u, 0.7, 0.1)
    plus = np.concatenate([np.ones((15, 1)), u], -1)
    minus = np.concatenate([np.ones((15, 1)), -u], -1)
    assert np.allclose(apply_mueller(m, plus), 0.7 * plus)
    assert np.allclose(apply_mueller(m, minus), 0.1 * minus)
    lin = elliptical_diattenuator([np.cos(0.6), np.sin(0.6), 0.0], 0.7, 0.1)
    assert np.allclose(lin, diattenuator(0.3, 0.7, 0.1))


def test_faraday_rotator_non_reciprocal_double_pass() -> None:
    verdet, b, length = 20.0, 0.5, 0.05  # rad/(T m), T, m
    alpha = faraday_rotation_angle(verdet, b, length)
    assert np.isclose(alpha, 0.5)
    one = faraday_rotator(verdet, b, length)
    # lab-frame double pass: the sense is fixed by B, so the rotations add
    # (optical activity would cancel)
    assert np.allclose(one @ one, rotator(2 * alpha))
    assert np.allclose(apply_mueller(one, linear_stokes(0.1)), linear_stokes(0.6))


def test_depolarizer(make) -> None:
    s = make.stokes(30)
    out = apply_mueller(depolarizer(0.5), s)
    assert np.allclose(degree_of_polarization(out), 0.5 * degree_of_polarization(s))
    assert np.allclose(out[..., 0], s[..., 0])
    assert np.allclose(apply_mueller(depolarizer(0.0), s)[..., 1:], 0.0)
    assert np.isclose(depolarization_index(depolarizer(0.0)), 0.0)
    assert not is_nondepolarizing(depolarizer([0.9, 0.8, 0.7]))
    assert is_nondepolarizing(retarder(0.2, 0.4) @ diattenuator(0.1, 0.9, 0.3))


def test_compose_order() -> None:
    first, second = polarizer(0.0), quarter_wave_plate(np.pi / 4)
    assert np.allclose(compose(first, second), second @ first)
    out = apply_mueller(compose(first, second), unpolarized_stokes(2.0))
    assert np.allclose(out, [1, 0, 0, 1])


def test_batching_shapes() -> None:
    theta = np.zeros((3, 1))
    delta = np.zeros((1, 5))
    assert retarder(theta, delta).shape == (3, 5, 4, 4)
    assert diattenuator(theta, 1.0, np.full((5,), 0.1)).shape == (3, 5, 4, 4)
    assert elliptical_diattenuator(np.ones((2, 1, 3)), 0.5, np.full((4,), 0.1)).shape == (
        2,
        4,
        4,
        4,
    )
    assert depolarizer(np.full((7, 3), 0.2)).shape == (7, 4, 4)
    assert apply_mueller(retarder(np.zeros(6), 0.3), np.ones((2, 1, 4)) * [1, 0, 0, 0]).shape == (
        2,
        6,
        4,
    )


def test_angles_round_trip(rng: np.random.Generator) -> None:
    psi = rng.uniform(-np.pi / 2 + 1e-3, np.pi / 2, 50)
    chi = rng.uniform(-np.pi / 4 + 1e-3, np.pi / 4 - 1e-3, 50)
    psi2, chi2 = stokes_to_angles(stokes_from_angles(psi, chi, 0.7, 2.0))
    assert np.allclose(psi2, psi) and np.allclose(chi2, chi)


@pytest.mark.parametrize(
    "call",
    [
        lambda: diattenuator(0.0, 0.1, 0.2),
        lambda: diattenuator(0.0, 1.0, -0.1),
        lambda: depolarizer(1.5),
        lambda: apply_mueller(np.eye(3), H),
        lambda: compose(),
        lambda: elliptical_retarder([0, 0, 0], 1.0),
    ],
)
def test_bad_input_raises(call) -> None:
    with pytest.raises(ValueError):
        call()
