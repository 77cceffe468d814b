"""Mueller, Stokes and Lorentz functions in closed form at their boundaries: identity and
attenuators, depolariser limits (a = +-1, t = 0), diattenuators with q = r and r = 0, one bad
entry in a batch, stacks of matrices, degenerate Stokes vectors (S0 = 0, unpolarised, fully
polarised), boosts and rotations about each axis, D = 0 and D = 1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsgn.optics import lorentz as L
from rsgn.optics import mueller as M
from rsgn.optics import stokes as S

R2 = math.sqrt(0.5)


# ------------------------------------------------------------------------------ Mueller
def test_frame_rotation_closed_form_batched():
    t = np.array([[0.0, np.pi / 8, np.pi / 4], [np.pi / 2, -np.pi / 8, 0.1]])
    r = M.frame_rotation(t)
    assert r.shape == (2, 3, 4, 4)
    want = np.array([[1, 0, 0, 0], [0, R2, R2, 0], [0, -R2, R2, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(r[0, 1], want, atol=1e-15)
    np.testing.assert_allclose(r[1, 0], np.diag([1.0, -1.0, -1.0, 1.0]), atol=1e-15)
    np.testing.assert_allclose(r[1, 1], want.T, atol=1e-15)
    np.testing.assert_allclose(r[0, 0], np.eye(4), atol=0)
    np.testing.assert_allclose(M.rotator(0.3), M.frame_rotation(-0.3), atol=0)


def test_rotate_element_and_apply_mueller_closed_forms():
    # a horizontal polariser turned by 45 degrees is the +45 polariser
    np.testing.assert_allclose(
        M.rotate_element(M.polarizer(0.0), np.pi / 4),
        0.5 * np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]),
        atol=1e-15,
    )
    m = np.arange(16.0).reshape(4, 4)
    s = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 2.0]])
    out = M.apply_mueller(np.stack([m, 2 * m])[:, None], s)
    assert out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out[0, 0], m[:, 0])
    np.testing.assert_array_equal(out[1, 1], 2 * (m[:, 2] + 2 * m[:, 3]))


def test_compose_one_and_three_elements():
    a, b, c = M.polarizer(0.2), M.retarder(0.1, 0.7), M.rotator(0.4)
    np.testing.assert_array_equal(M.compose(a), a)
    np.testing.assert_allclose(M.compose(a, b, c), c @ b @ a, atol=1e-15)
    with pytest.raises(ValueError, match="at least one element"):
        M.compose()


def test_identity_and_attenuator():
    np.testing.assert_array_equal(M.identity(), np.eye(4))
    i = M.identity((2, 3))
    assert i.shape == (2, 3, 4, 4) and (i == np.eye(4)).all()
    i[0, 0, 1, 1] = 5.0  # a writable copy, each matrix its own
    assert i[0, 1, 1, 1] == 1.0
    t = M.attenuator(np.array([0.0, 0.25, 1.0]))
    assert t.shape == (3, 4, 4)
    np.testing.assert_array_equal(t[1], 0.25 * np.eye(4))
    np.testing.assert_array_equal(t[0], np.zeros((4, 4)))
    np.testing.assert_array_equal(M.attenuator(0.5), 0.5 * np.eye(4))
    with pytest.raises(ValueError, match="non-negative"):
        M.attenuator([0.5, -1e-12])


def test_retarder_closed_form_at_45_degrees():
    d = 0.7
    cd, sd = math.cos(d), math.sin(d)
    want = np.array([[1, 0, 0, 0], [0, cd, 0, -sd], [0, 0, 1, 0], [0, sd, 0, cd]])
    np.testing.assert_allclose(M.retarder(np.pi / 4, d), want, atol=1e-15)
    want0 = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, cd, sd], [0, 0, -sd, cd]])
    np.testing.assert_allclose(M.retarder(0.0, d), want0, atol=1e-15)
    # theta = pi/8: c = s = 1/sqrt 2
    m = M.retarder(np.pi / 8, d)
    np.testing.assert_allclose(m[1, 1], 0.5 + 0.5 * cd, atol=1e-15)
    np.testing.assert_allclose(m[1, 2], 0.5 * (1 - cd), atol=1e-15)
    np.testing.assert_allclose(m[2, 1], 0.5 * (1 - cd), atol=1e-15)
    np.testing.assert_allclose(m[2, 2], 0.5 + 0.5 * cd, atol=1e-15)
    np.testing.assert_allclose(m[1:, 3], [-R2 * sd, R2 * sd, cd], atol=1e-15)
    np.testing.assert_allclose(m[3, 1:], [R2 * sd, -R2 * sd, cd], atol=1e-15)
    np.testing.assert_allclose(M.quarter_wave_plate(0.3), M.retarder(0.3, np.pi / 2), atol=0)
    np.testing.assert_allclose(M.half_wave_plate(0.3), M.retarder(0.3, np.pi), atol=0)


def test_elliptical_retarder_circular_axis_rotates_about_s3():
    m = M.elliptical_retarder([0.0, 0.0, 1.0], 0.6)
    np.testing.assert_allclose(m, M.rotator(-0.3), atol=1e-15)


def test_faraday_angle_is_the_product():
    assert M.faraday_rotation_angle(2.0, 0.5, 3.0) == 3.0
    np.testing.assert_allclose(
        M.faraday_rotation_angle([1.0, 2.0], 0.25, [4.0, -2.0]), [1.0, -1.0], atol=0
    )
    np.testing.assert_allclose(M.faraday_rotator(2.0, 0.5, 0.1), M.rotator(0.1), atol=1e-15)


def test_diattenuator_closed_form_and_boundaries():
    q, r = 0.9, 0.16
    g = math.sqrt(q * r)
    want = 0.5 * np.array(
        [[q + r, q - r, 0, 0], [q - r, q + r, 0, 0], [0, 0, 2 * g, 0], [0, 0, 0, 2 * g]]
    )
    np.testing.assert_allclose(M.diattenuator(0.0, q, r), want, atol=1e-15)
    # at 90 degrees the roles of S1 flip; at 45 degrees the S2 axis carries them
    np.testing.assert_allclose(M.diattenuator(np.pi / 2, q, r)[0, 1], -(q - r) / 2, atol=1e-15)
    np.testing.assert_allclose(M.diattenuator(np.pi / 4, q, r)[0, 2], (q - r) / 2, atol=1e-15)
    np.testing.assert_allclose(M.diattenuator(np.pi / 4, q, r)[1, 1], g, atol=1e-15)
    np.testing.assert_allclose(M.diattenuator(np.pi / 4, q, r)[2, 2], (q + r) / 2, atol=1e-15)
    # q = r is an attenuator; r = 0 is the polariser
    np.testing.assert_allclose(M.diattenuator(0.4, 0.5, 0.5), 0.5 * np.eye(4), atol=1e-15)
    np.testing.assert_allclose(
        M.polarizer(0.0, 0.8),
        0.4 * np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
        atol=1e-15,
    )


@pytest.mark.parametrize(
    "q,r,match",
    [
        ([1.0, 0.5], [0.2, 0.6], "q >= r >= 0"),
        ([1.0, 0.5], [0.2, -1e-9], "q >= r >= 0"),
        ([1.0, np.nan], [0.2, 0.1], "finite"),
        ([1.0, 0.5], [np.inf, 0.1], "finite"),
        ([1.0, np.inf], [0.2, 0.1], "finite"),
    ],
)
def test_one_bad_transmittance_in_a_batch_is_refused(q, r, match):
    with pytest.raises(ValueError, match=match):
        M.diattenuator(0.0, q, r)
    with pytest.raises(ValueError, match=match):
        M.elliptical_diattenuator([0.0, 0.0, 1.0], q, r)


def test_elliptical_diattenuator_circular_axis_closed_form():
    q, r = 0.8, 0.2
    m = M.elliptical_diattenuator([0.0, 0.0, 2.0], [q, 0.5], [r, 0.5])
    assert m.shape == (2, 4, 4)
    want = np.array(
        [[0.5, 0, 0, 0.3], [0, 0.4, 0, 0], [0, 0, 0.4, 0], [0.3, 0, 0, 0.5]]
    )  # T = 0.5, D T = 0.3, sqrt(qr) = 0.4
    np.testing.assert_allclose(m[0], want, atol=1e-15)
    np.testing.assert_allclose(m[1], 0.5 * np.eye(4), atol=1e-15)
    np.testing.assert_allclose(
        M.elliptical_diattenuator([1.0, 0.0, 0.0], q, r), M.diattenuator(0.0, q, r), atol=1e-15
    )


def test_depolarizer_limits_and_shapes():
    np.testing.assert_array_equal(M.depolarizer(1.0), np.eye(4))
    np.testing.assert_array_equal(M.depolarizer(-1.0), np.diag([1.0, -1.0, -1.0, -1.0]))
    np.testing.assert_array_equal(M.depolarizer([0.5, -1.0, 1.0]), np.diag([1, 0.5, -1, 1]))
    np.testing.assert_array_equal(M.depolarizer(0.3, 0.0), np.zeros((4, 4)))
    np.testing.assert_array_equal(M.depolarizer(0.5, 2.0), np.diag([2.0, 1.0, 1.0, 1.0]))
    iso = M.depolarizer(np.array([0.2, 0.4]), np.array([1.0, 0.5]))  # two isotropic factors
    assert iso.shape == (2, 4, 4)
    np.testing.assert_allclose(iso[1], 0.5 * np.diag([1.0, 0.4, 0.4, 0.4]), atol=0)
    per = M.depolarizer(np.full((2, 3), 0.5), np.array([1.0, 0.25]))
    np.testing.assert_allclose(per[1], 0.25 * np.diag([1.0, 0.5, 0.5, 0.5]), atol=0)
    for bad in (1.0 + 1e-12, -1.5, [0.2, 1.01, 0.0]):
        with pytest.raises(ValueError, match=r"\|a_i\| <= 1"):
            M.depolarizer(bad)
    with pytest.raises(ValueError, match="non-negative"):
        M.depolarizer(0.5, [1.0, -0.1])


def test_diattenuation_and_polarizance_vectors_of_an_asymmetric_matrix():
    m = np.array([[2.0, 0.2, 0.4, 0.6], [1.0, 1.0, 0, 0], [-0.4, 0, 1.0, 0], [0.2, 0, 0, 1.0]])
    np.testing.assert_allclose(M.diattenuation_vector(m), [0.1, 0.2, 0.3], atol=1e-15)
    np.testing.assert_allclose(M.polarizance(m), [0.5, -0.2, 0.1], atol=1e-15)
    assert M.diattenuation(m) == pytest.approx(math.sqrt(0.14), rel=1e-15)
    stack = np.stack([m, 3 * M.diattenuator(0.3, 0.9, 0.1)])
    np.testing.assert_allclose(M.diattenuation(stack), [math.sqrt(0.14), 0.8], atol=1e-15)
    grid = np.stack([stack, stack[::-1], stack])  # (3, 2, 4, 4): the norm is over the last axis
    np.testing.assert_allclose(M.diattenuation(grid)[1], [0.8, math.sqrt(0.14)], atol=1e-15)
    np.testing.assert_allclose(
        M.polarizance(stack)[1], 0.8 * np.array([math.cos(0.6), math.sin(0.6), 0]), atol=1e-15
    )


def test_depolarization_index_on_a_stack_and_the_nondepolarizing_test():
    stack = np.stack(
        [
            M.identity(),
            M.depolarizer(0.0),
            M.depolarizer(0.5),
            M.depolarizer([1.0, 0.0, 0.0], 3.0),
            M.attenuator(0.2),
        ]
    )
    want = [1.0, 0.0, 0.5, math.sqrt(1 / 3), 1.0]
    np.testing.assert_allclose(M.depolarization_index(stack), want, rtol=1e-15, atol=1e-16)
    assert M.is_nondepolarizing(stack).tolist() == [True, False, False, False, True]
    # the tolerance is inclusive: P = 1 exactly passes at atol = 0
    assert M.depolarization_index(M.identity()) == 1.0
    assert M.is_nondepolarizing(M.identity(), atol=0.0)
    assert not M.is_nondepolarizing(M.depolarizer(0.9999), atol=1e-6)
    assert M.is_nondepolarizing(M.depolarizer(0.9999), atol=1e-3)
    # the default tolerance is 1e-9; an index above 1 (not physical) is not "non-depolarising"
    assert M.is_nondepolarizing(M.depolarizer(1 - 0.5e-9))
    assert not M.is_nondepolarizing(M.depolarizer(1 - 1.5e-9))
    assert not M.is_nondepolarizing(np.diag([1.0, 2.0, 0.0, 0.0]))


# ------------------------------------------------------------------------------ Stokes
def test_jones_to_stokes_batched_and_bad_shapes():
    j = np.array([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1j], [R2, -R2]]])
    s = S.jones_to_stokes(j)
    assert s.shape == (2, 2, 4)
    np.testing.assert_allclose(s[0, 0], [1, 1, 0, 0], atol=0)
    np.testing.assert_allclose(s[0, 1], [4, -4, 0, 0], atol=0)
    np.testing.assert_allclose(s[1, 0], [2, 0, 0, 2], atol=1e-15)
    np.testing.assert_allclose(s[1, 1], [1, 0, -1, 0], atol=1e-15)
    for bad in (1.0, [1.0, 0.0, 0.0]):
        with pytest.raises(ValueError, match="last axis of length 2"):
            S.jones_to_stokes(bad)


def test_stokes_from_angles_closed_form_and_broadcast():
    s = S.stokes_from_angles(np.pi / 8, np.pi / 12, 0.5, 2.0)
    c2x = math.cos(np.pi / 6)
    np.testing.assert_allclose(s, [2.0, c2x * R2, c2x * R2, 0.5], atol=1e-15)
    b = S.stokes_from_angles(np.zeros((3, 1)), np.zeros(2), s0=[1.0, 4.0])
    assert b.shape == (3, 2, 4)
    np.testing.assert_allclose(b[2, 1], [4, 4, 0, 0], atol=0)
    np.testing.assert_array_equal(S.stokes_from_angles(0.0, 0.0), [1.0, 1.0, 0.0, 0.0])
    psi, chi = S.stokes_to_angles([2.0, 0.0, -1.0, 1.0])
    assert psi == pytest.approx(-np.pi / 4) and chi == pytest.approx(np.pi / 8)
    psi, chi = S.stokes_to_angles(np.array([[1.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, -1.0]]))
    np.testing.assert_allclose(psi, [np.pi / 2, 0.0], atol=1e-15)
    np.testing.assert_allclose(chi, [0.0, -np.pi / 4], atol=1e-15)


def test_stokes_from_direction_normalises_and_broadcasts():
    s = S.stokes_from_direction([3.0, 4.0, 0.0], dop=0.5, s0=2.0)
    np.testing.assert_allclose(s, [2.0, 0.6, 0.8, 0.0], atol=1e-15)
    b = S.stokes_from_direction([[0.0, 0.0, 2.0], [0.0, -1.0, 0.0]], s0=[[1.0], [3.0]])
    assert b.shape == (2, 2, 4)
    np.testing.assert_allclose(b[1, 0], [3, 0, 0, 3], atol=0)
    np.testing.assert_allclose(b[0, 1], [1, 0, -1, 0], atol=0)
    np.testing.assert_array_equal(S.stokes_from_direction([0.0, 0.0, 5.0]), [1.0, 0, 0, 1.0])
    with pytest.raises(ValueError, match="non-zero"):
        S.stokes_from_direction([0.0, 0.0, 0.0])


def test_linear_circular_and_unpolarised_light():
    np.testing.assert_allclose(S.linear_stokes(np.pi / 8, 2.0), [2, 2 * R2, 2 * R2, 0], atol=1e-15)
    np.testing.assert_allclose(S.circular_stokes("r", 3.0), [3, 0, 0, 3], atol=1e-15)
    np.testing.assert_allclose(S.circular_stokes("l"), [1, 0, 0, -1], atol=1e-15)
    with pytest.raises(ValueError, match="handedness must be 'r' or 'l', got 'x'"):
        S.circular_stokes("x")
    u = S.unpolarized_stokes(np.array([1.0, 2.5]))
    np.testing.assert_array_equal(u, [[1, 0, 0, 0], [2.5, 0, 0, 0]])
    np.testing.assert_array_equal(S.unpolarized_stokes(), [1, 0, 0, 0])


def test_degree_of_polarization_and_lorentz_norm_edge_cases():
    s = np.array(
        [[2.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-1.0, 0.5, 0.0, 0.0],
         [5.0, 0.0, 3.0, 4.0], [1.0, 1.0 + 1e-12, 0.0, 0.0], [2.0, 1.0, 1.0, 1.0],
         [0.5, 0.0, 0.3, 0.4]]
    )  # fmt: skip
    p = S.degree_of_polarization(s)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, [0.5, 0.0, 0.0, 0.0, 1.0, 1.0 + 1e-12, math.sqrt(3) / 2, 1.0])
    n = S.lorentz_norm(s)
    np.testing.assert_allclose(n, [math.sqrt(3), 0, 0, math.sqrt(0.75), 0, 0, 1, 0], atol=1e-12)
    assert S.lorentz_norm([5.0, 3.0, 0.0, 0.0]) == 4.0


def test_polarization_direction_and_physical_check():
    st = np.array([[2.0, 0.0, 3.0, 4.0], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.3, 0.4]])
    d = S.polarization_direction(st)
    np.testing.assert_allclose(d, [[0.0, 0.6, 0.8], [0.0, 0.0, 0.0], [0.0, 0.6, 0.8]], atol=1e-15)
    d3 = S.polarization_direction(np.stack([st, st[::-1]]))  # (2, 3, 3): norm over the last axis
    np.testing.assert_allclose(d3[1, 2], [0.0, 0.6, 0.8], atol=1e-15)
    ok3 = S.is_physical_stokes(np.stack([st, 2 * st, np.array([[1.0, 0.0, 0.0, 1.5]] * 3)]))
    assert ok3.tolist() == [[False, True, True], [False, True, True], [False] * 3]
    assert S.is_physical_stokes([1.0, -0.6, 0.0, -0.8])  # negative components are fine
    s = np.array(
        [[1.0, 1.0, 0.0, 0.0], [-1e-12, 0.0, 0.0, 0.0], [-3e-12, 0.0, 0.0, 0.0],
         [1.0, 0.6, 0.8 + 2e-12, 0.0], [1.0, 0.0, 0.0, 1.0 + 0.5e-12], [0.0, 0.0, 0.0, 0.0],
         [-1.5e-12, 0.0, 0.0, 0.0]]
    )  # fmt: skip
    assert S.is_physical_stokes(s).tolist() == [True, True, False, False, True, True, False]
    assert S.is_physical_stokes(s, atol=1e-11).tolist() == [True] * 7
    assert S.is_physical_stokes(s, atol=0.0).tolist() == [True] + [False] * 4 + [True, False]


# ------------------------------------------------------------------------------ Lorentz
def test_minkowski_metric_and_inner_product():
    assert not L.MINKOWSKI.flags.writeable
    g = L.minkowski_metric()
    np.testing.assert_array_equal(g, np.diag([1.0, -1.0, -1.0, -1.0]))
    g[0, 0] = 5.0  # a fresh copy
    assert L.MINKOWSKI[0, 0] == 1.0
    a = np.array([[2.0, 1.0, 1.0, 1.0], [3.0, 0.0, 4.0, 0.0]])
    b = np.array([3.0, 1.0, 0.0, 2.0])
    np.testing.assert_array_equal(L.minkowski_inner(a, b), [6.0 - 3.0, 9.0])


def test_rotation_closed_form_about_each_axis_batched():
    phi = 0.4
    c, s = math.cos(phi), math.sin(phi)
    rz = L.rotation3([0.0, 0.0, 2.0], phi)
    np.testing.assert_allclose(rz, [[c, -s, 0], [s, c, 0], [0, 0, 1]], atol=1e-15)
    rx = L.rotation3([[1.0, 0.0, 0.0]], [phi, -phi])  # broadcast to (2, 3, 3)
    assert rx.shape == (2, 3, 3)
    np.testing.assert_allclose(rx[1], [[1, 0, 0], [0, c, s], [0, -s, c]], atol=1e-15)
    r4 = L.rotation([0.0, 1.0, 0.0], np.array([[phi], [0.0]]))
    assert r4.shape == (2, 1, 4, 4)
    want = np.eye(4)
    want[1:, 1:] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    np.testing.assert_allclose(r4[0, 0], want, atol=1e-15)
    np.testing.assert_allclose(r4[1, 0], np.eye(4), atol=0)


def test_boost_closed_form_and_rapidity_addition():
    eta = 0.7
    ch, sh = math.cosh(eta), math.sinh(eta)
    bx = L.boost([2.0, 0.0, 0.0], eta)
    np.testing.assert_allclose(
        bx, [[ch, sh, 0, 0], [sh, ch, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], atol=1e-15
    )
    by = L.boost([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.array([eta, -eta]))
    assert by.shape == (2, 4, 4)
    np.testing.assert_allclose(by[0, 0, :3], [ch, 0, sh], atol=1e-15)
    np.testing.assert_allclose(np.diag(by[1]), [ch, 1, 1, ch], atol=1e-15)
    np.testing.assert_allclose(by[1, 3, 0], -sh, atol=1e-15)
    u = [1.0, 2.0, 2.0]
    np.testing.assert_allclose(L.boost(u, 0.3) @ L.boost(u, 0.5), L.boost(u, 0.8), atol=1e-14)


def test_gain_defect_and_scaled_lorentz_test():
    assert L.mueller_gain(M.attenuator(0.3)) == pytest.approx(0.3, rel=1e-14)
    np.testing.assert_allclose(
        L.mueller_gain(np.stack([M.diattenuator(0.2, 0.9, 0.4), M.retarder(0.1, 0.3)])),
        [0.6, 1.0],
        rtol=1e-14,
    )
    assert L.lorentz_defect(M.retarder(0.3, 1.1)) < 1e-15
    # depolariser a = 0.5: M^T G M = diag(1, -1/4, -1/4, -1/4), g^2 = sqrt(1/8)
    g2 = math.sqrt(0.125)
    assert L.lorentz_defect(M.depolarizer(0.5)) == pytest.approx((1 - g2) / g2, rel=1e-13)
    assert L.lorentz_defect(M.polarizer(0.2)) == np.inf
    flags = L.is_scaled_lorentz(
        np.stack([M.retarder(0.3, 1.1), M.depolarizer(0.5), -np.eye(4), 2 * L.boost([1, 0, 0], 1)])
    )
    assert flags.tolist() == [True, False, False, True]
    # inclusive tolerance, default 1e-9
    near = L.boost([1.0, 0.0, 0.0], 0.5)
    near[1, 1] += 4e-10
    assert L.is_scaled_lorentz(near) and not L.is_scaled_lorentz(near, atol=1e-10)
    assert L.is_scaled_lorentz(np.eye(4), atol=0.0)


def test_rapidity_and_diattenuation_conversions_at_their_ends():
    np.testing.assert_allclose(
        L.rapidity_from_diattenuation([0.0, 0.5, 1.0]), [0.0, math.atanh(0.5), np.inf]
    )
    for bad in ([0.5, -1e-12], [1.0 + 1e-12, 0.2]):
        with pytest.raises(ValueError, match=r"diattenuation must lie in \[0, 1\]"):
            L.rapidity_from_diattenuation(bad)
    assert L.diattenuation_from_rapidity(math.atanh(0.25)) == pytest.approx(0.25, rel=1e-15)
    np.testing.assert_allclose(
        L.diattenuation_from_transmittances([0.9, 0.5], [0.1, 0.5]), [0.8, 0.0], atol=1e-15
    )
    np.testing.assert_allclose(
        L.rapidity_from_transmittances([0.9, 0.5], [0.1, 0.0]), [0.5 * math.log(9), np.inf]
    )
    eta = np.array([0.0, 0.5])
    q, r = L.transmittances_from_rapidity(eta, 0.8)
    np.testing.assert_allclose(q, [0.8, 0.8], atol=0)
    np.testing.assert_allclose(r, [0.8, 0.8 * math.exp(-1.0)], rtol=1e-15)
    src = np.array([0.9, 0.7])
    q, r = L.transmittances_from_rapidity(0.0, src)
    q[0] = 0.0  # a copy, not the caller's array
    assert src[0] == 0.9


def test_boost_and_rotation_parameters_recover_their_inputs():
    u = np.array([2.0, -1.0, 2.0]) / 3.0
    g, axis, eta = L.boost_parameters(np.stack([0.6 * L.boost(u, 0.9), 2.0 * np.eye(4)]))
    np.testing.assert_allclose(g, [0.6, 2.0], rtol=1e-13)
    np.testing.assert_allclose(eta, [0.9, 0.0], atol=1e-13)
    np.testing.assert_allclose(axis, [u, [1.0, 0.0, 0.0]], atol=1e-13)
    for phi in (0.3, 1.2, 2.5, 3.0):
        a, p = L.rotation_parameters(L.rotation(u, phi))
        assert p == pytest.approx(phi, abs=1e-12)
        np.testing.assert_allclose(a, u, atol=1e-9)
    a, p = L.rotation_parameters(np.stack([np.eye(4), L.rotation([0, 0, 1.0], np.pi)]))
    np.testing.assert_allclose(p, [0.0, np.pi], atol=1e-12)
    np.testing.assert_allclose(a[0], [1.0, 0.0, 0.0], atol=0)
    np.testing.assert_allclose(np.abs(a[1]), [0.0, 0.0, 1.0], atol=1e-12)
