"""Stokes vectors as hyperbolic points: model maps, distances, invariance, Möbius action."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    apply_mueller,
    boost,
    degree_of_polarization,
    depolarizer,
    dop_direction_to_poincare,
    einstein_add,
    elliptical_diattenuator,
    elliptical_retarder,
    hyperboloid_distance,
    hyperboloid_to_poincare,
    jones_from_direction,
    jones_to_mueller,
    jones_to_stokes,
    klein_distance,
    klein_to_poincare,
    klein_to_stokes,
    lorentz_norm,
    mobius_add,
    poincare_distance,
    poincare_to_dop_direction,
    poincare_to_hyperboloid,
    poincare_to_klein,
    poincare_to_stokes,
    stokes_distance,
    stokes_to_hyperboloid,
    stokes_to_klein,
    stokes_to_poincare,
)


def test_klein_poincare_round_trip(make) -> None:
    y = make.ball(200, 0.999)
    assert np.allclose(klein_to_poincare(poincare_to_klein(y)), y, atol=1e-12)
    x = make.ball(200, 0.999999)
    assert np.allclose(poincare_to_klein(klein_to_poincare(x)), x, atol=1e-12)
    # the boundary maps to itself
    u = make.unit(5)
    assert np.allclose(klein_to_poincare(u), u) and np.allclose(poincare_to_klein(u), u)


def test_stokes_round_trips(make) -> None:
    s = make.stokes(100)
    assert np.allclose(klein_to_stokes(stokes_to_klein(s), s[:, 0]), s)
    assert np.allclose(poincare_to_stokes(stokes_to_poincare(s), s0=s[:, 0]), s)
    assert np.allclose(poincare_to_stokes(stokes_to_poincare(s), lorentz_norm=lorentz_norm(s)), s)
    h = stokes_to_hyperboloid(s)
    assert np.allclose(h[:, 0] ** 2 - np.sum(h[:, 1:] ** 2, -1), 1.0)
    assert np.allclose(poincare_to_hyperboloid(hyperboloid_to_poincare(h)), h)


def test_dop_direction_radius(rng: np.random.Generator, make) -> None:
    p = rng.uniform(0, 0.999, 50)
    n = make.unit(50)
    y = dop_direction_to_poincare(p, n)
    assert np.allclose(np.linalg.norm(y, axis=-1), np.tanh(np.arctanh(p) / 2))
    p2, n2 = poincare_to_dop_direction(y)
    assert np.allclose(p2, p) and np.allclose(n2, n)
    # d(origin, point) = artanh(p)
    assert np.allclose(poincare_distance(np.zeros(3), y), np.arctanh(p))


def test_distances_agree_across_models(make) -> None:
    s, t = make.stokes(100), make.stokes(100)
    d = stokes_distance(s, t)
    assert np.allclose(klein_distance(stokes_to_klein(s), stokes_to_klein(t)), d)
    assert np.allclose(
        poincare_distance(stokes_to_poincare(s), stokes_to_poincare(t)), d, atol=1e-9
    )
    assert np.allclose(hyperboloid_distance(stokes_to_hyperboloid(s), stokes_to_hyperboloid(t)), d)
    # intensity-independent
    assert np.allclose(stokes_distance(3.0 * s, 0.2 * t), d)


def test_distance_invariant_under_nondepolarizing_elements(make) -> None:
    j = make.jones(200)
    m = jones_to_mueller(j)
    s, t = make.stokes(len(j)), make.stokes(len(j))
    before = stokes_distance(s, t)
    after = stokes_distance(apply_mueller(m, s), apply_mueller(m, t))
    assert np.allclose(after, before, rtol=1e-7, atol=1e-9)


def test_depolarizer_is_not_an_isometry(make) -> None:
    s = make.stokes(50, pmax=0.9)
    s[:, 1:] += 0.05 * s[:, :1]  # keep points away from the origin
    s[:, 1:] *= 0.9
    t = np.concatenate([s[:, :1], -s[:, 1:]], -1)
    m = depolarizer(0.5)
    before = stokes_distance(s, t)
    after = stokes_distance(apply_mueller(m, s), apply_mueller(m, t))
    assert np.all(after < before)


def test_pure_states_stay_on_sphere(rng: np.random.Generator, make) -> None:
    e = jones_from_direction(make.unit(100), rng.uniform(0.5, 2, 100))
    s = jones_to_stokes(e)
    m = jones_to_mueller(make.jones(100)[: len(s)])
    out = apply_mueller(m, s[: len(m)])
    assert np.allclose(degree_of_polarization(out), 1.0)
    assert np.allclose(lorentz_norm(out), 0.0, atol=1e-6)


def test_boost_is_mobius_and_einstein_addition(rng: np.random.Generator, make) -> None:
    n = 100
    u = make.unit(n)
    eta = rng.uniform(0, 3, n)
    s = make.stokes(n)
    out = apply_mueller(boost(u, eta), s)
    a = np.tanh(eta / 2)[:, None] * u
    assert np.allclose(stokes_to_poincare(out), mobius_add(a, stokes_to_poincare(s)), atol=1e-10)
    dvec = np.tanh(eta)[:, None] * u
    assert np.allclose(stokes_to_klein(out), einstein_add(dvec, stokes_to_klein(s)), atol=1e-10)


def test_general_element_is_rotation_after_mobius(rng: np.random.Generator, make) -> None:
    n = 50
    u = make.unit(n)
    q, r = 0.9, 0.05
    axis = make.unit(n)
    delta = rng.uniform(0, np.pi, n)
    m = elliptical_retarder(axis, delta) @ elliptical_diattenuator(u, q, r)
    s = make.stokes(n)
    a = np.tanh(0.5 * np.log(q / r) / 2) * u
    moved = mobius_add(a, stokes_to_poincare(s))
    rot = elliptical_retarder(axis, delta)[:, 1:, 1:]
    assert np.allclose(stokes_to_poincare(apply_mueller(m, s)), (rot @ moved[..., None])[..., 0])


def test_diattenuator_moves_origin_by_eta() -> None:
    q, r = 0.9, 0.01
    out = apply_mueller(elliptical_diattenuator([0, 1, 0], q, r), [1.0, 0, 0, 0])
    assert np.isclose(poincare_distance(np.zeros(3), stokes_to_poincare(out)), 0.5 * np.log(q / r))


def test_mobius_identities(make) -> None:
    a, b = make.ball(50), make.ball(50)
    assert np.allclose(mobius_add(a, np.zeros(3)), a)
    assert np.allclose(mobius_add(-a, mobius_add(a, b)), b)  # left cancellation
    assert np.allclose(
        poincare_distance(a, b), 2 * np.arctanh(np.linalg.norm(mobius_add(-a, b), axis=-1))
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: klein_to_poincare([1.5, 0, 0]),
        lambda: poincare_distance([0.99, 0.5, 0], [0, 0, 0]),
        lambda: poincare_distance([1.0, 0, 0], [0, 0, 0]),
        lambda: stokes_to_klein([1.0, 1.0, 1.0, 0.0]),
        lambda: stokes_to_hyperboloid([1.0, 1.0, 0.0, 0.0]),
        lambda: stokes_to_klein([0.0, 0.0, 0.0, 0.0]),
        lambda: poincare_to_stokes([0.1, 0, 0], s0=1.0, lorentz_norm=1.0),
        lambda: klein_to_poincare([np.nan, 0, 0]),
        lambda: dop_direction_to_poincare(1.2, [1, 0, 0]),
    ],
)
def test_points_outside_the_ball_raise(call) -> None:
    with pytest.raises(ValueError):
        call()
