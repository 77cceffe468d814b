"""Hyperbolic-distance readout from one intensity behind a diattenuator (reference sheet §5)."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    apply_mueller,
    detected_intensity,
    diattenuator,
    diattenuator_for_node,
    diattenuator_node,
    diattenuator_node_poincare,
    diattenuator_readout,
    distance_from_readout,
    elliptical_diattenuator,
    expected_readout,
    hyperboloid_distance,
    lorentz_norm,
    poincare_distance,
    quarter_wave_plate,
    readout_chain,
    readout_retarder,
    stokes_to_hyperboloid,
    stokes_to_poincare,
)


def test_reference_sheet_example() -> None:
    # theta = 0, q = 0.9, r = 0.1, I = 1, rho = 1
    ch, sh = np.cosh(1.0), np.sinh(1.0)
    states = np.array([[ch, sh, 0, 0], [ch, -sh, 0, 0], [ch, 0, sh, 0]])
    got = detected_intensity(states, diattenuator(0.0, 0.9, 0.1))
    assert np.allclose(got, [1.2416, 0.3015, 0.7715], atol=1e-4)


def test_readout_equals_sqrt_qr_i_cosh_distance(rng: np.random.Generator, make) -> None:
    n = 2000
    s = make.stokes(n, pmax=0.99)
    u = make.unit(n)
    q = rng.uniform(0.2, 1.0, n)
    r = q * rng.uniform(1e-3, 1.0, n)
    reading = detected_intensity(s, elliptical_diattenuator(u, q, r))
    assert np.allclose(reading, diattenuator_readout(s, u, q, r))
    d = hyperboloid_distance(stokes_to_hyperboloid(s), diattenuator_node(u, q, r))
    assert np.allclose(reading, expected_readout(lorentz_norm(s), d, q, r), rtol=1e-12)
    # the node sits opposite the high-transmission axis: +u would give a different (wrong) answer
    wrong = np.concatenate(
        [diattenuator_node(u, q, r)[:, :1], -diattenuator_node(u, q, r)[:, 1:]], -1
    )
    d_wrong = hyperboloid_distance(stokes_to_hyperboloid(s), wrong)
    assert not np.allclose(reading, expected_readout(lorentz_norm(s), d_wrong, q, r))


def test_inversion_round_trip(make) -> None:
    n = 500
    s = make.stokes(n)
    u = make.unit(n)
    q, r = 1.0, 0.02
    reading = diattenuator_readout(s, u, q, r)
    d = distance_from_readout(reading, lorentz_norm(s), q, r)
    y_node = diattenuator_node_poincare(u, q, r)
    assert np.allclose(d, poincare_distance(stokes_to_poincare(s), y_node), atol=1e-7)
    # a reading below the minimum (noise) clips to distance 0
    assert distance_from_readout(0.5 * np.sqrt(q * r), 1.0, q, r) == 0.0


def test_node_for_point_round_trip(rng: np.random.Generator, make) -> None:
    y = rng.uniform(0, 0.9, 40)[:, None] * make.unit(40)
    axis, q, r = diattenuator_for_node(y, q_max=0.8)
    assert np.allclose(q, 0.8)
    assert np.allclose(diattenuator_node_poincare(axis, q, r), y)
    ax0, q0, r0 = diattenuator_for_node(np.zeros(3))
    assert np.isclose(q0, r0) and np.allclose(ax0, [1, 0, 0])


def test_readout_chain_matches_elliptical_first_row(make) -> None:
    u = make.unit(200)
    u[0] = [1, 0, 0]
    u[1] = [-1, 0, 0]
    chain = readout_chain(u, 0.9, 0.1)
    ell = elliptical_diattenuator(u, 0.9, 0.1)
    assert np.allclose(chain[:, 0, :], ell[:, 0, :])
    rr = readout_retarder(u)
    assert np.allclose(apply_mueller(rr, np.concatenate([np.ones((200, 1)), u], -1)), [1, 1, 0, 0])


def test_qwp_in_front_reads_circular_node() -> None:
    m = diattenuator(0.0, 0.9, 0.1) @ quarter_wave_plate(np.pi / 4)
    assert np.allclose(m[0], [0.5, 0, 0, -0.4])  # u' = (0, 0, -1)


def test_pure_state_reads_horofunction(make) -> None:
    n = make.unit(20)
    s = np.concatenate([np.ones((20, 1)), n], -1)
    u = make.unit(20)
    q, r = 0.9, 0.1
    eta = 0.5 * np.log(q / r)
    got = diattenuator_readout(s, u, q, r)
    assert np.allclose(got, np.sqrt(q * r) * (np.cosh(eta) + np.sinh(eta) * np.sum(u * n, -1)))


def test_readout_errors() -> None:
    with pytest.raises(ValueError):
        diattenuator_readout([1, 0, 0, 0], [1, 0, 0], 0.1, 0.5)
    with pytest.raises(ValueError):
        distance_from_readout(1.0, 0.0, 1.0, 0.1)
    with pytest.raises(ValueError):
        diattenuator_for_node([1.0, 0, 0])
