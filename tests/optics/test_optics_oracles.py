"""Agreement with py_pol 1.3.0 and pypolar (test-time oracles; constructors only, never py_pol's
decompose_polar, which is known to be wrong)."""

from __future__ import annotations

import numpy as np
import pytest

from rsgn.optics import (
    degree_of_polarization,
    diattenuator,
    elliptical_diattenuator,
    elliptical_retarder,
    jones_retarder,
    jones_to_mueller,
    polarizer,
    quarter_wave_plate,
    retarder,
    rotator,
    stokes_from_angles,
)

THETAS = np.array([0.0, 0.3, -0.7, 1.2, np.pi / 4])
DELTAS = np.array([np.pi / 2, 0.4, 2.9, np.pi, 1.1])


def _pp():
    return pytest.importorskip("py_pol", reason="py_pol (test oracle) not installed")


def _pypolar():
    return pytest.importorskip("pypolar", reason="pypolar (test oracle) not installed")


def _m(obj) -> np.ndarray:
    """py_pol stores Mueller matrices as (4, 4, N)."""
    return np.moveaxis(np.asarray(obj.M), -1, 0)


def test_pypol_retarder_linear() -> None:
    _pp()
    from py_pol.mueller import Mueller

    m = _m(Mueller("r").retarder_linear(R=DELTAS, azimuth=THETAS))
    assert np.allclose(m, retarder(THETAS, DELTAS), atol=1e-12)


def test_pypol_diattenuator_linear() -> None:
    _pp()
    from py_pol.mueller import Mueller

    q = np.array([1.0, 0.9, 0.5, 0.8, 0.3])
    r = np.array([0.0, 0.1, 0.05, 0.8, 0.01])
    m = _m(Mueller("d").diattenuator_linear(Tmax=q, Tmin=r, azimuth=THETAS))
    assert np.allclose(m, diattenuator(THETAS, q, r), atol=1e-12)


def test_pypol_elliptical_elements() -> None:
    _pp()
    from py_pol.mueller import Mueller

    az = np.array([0.1, 0.5, -0.4])
    el = np.array([0.2, -0.3, 0.6])
    axis = stokes_from_angles(az, el)[..., 1:]
    m_ret = _m(Mueller("r").retarder_azimuth_ellipticity(R=0.8, azimuth=az, ellipticity=el))
    assert np.allclose(m_ret, elliptical_retarder(axis, 0.8), atol=1e-12)
    m_dia = _m(
        Mueller("d").diattenuator_azimuth_ellipticity(
            Tmax=0.9, Tmin=0.2, azimuth=az, ellipticity=el
        )
    )
    assert np.allclose(m_dia, elliptical_diattenuator(axis, 0.9, 0.2), atol=1e-12)


def test_pypol_circular_retarder_sign_trap() -> None:
    _pp()
    from py_pol.mueller import Mueller

    # py_pol's retarder_circular(2a, 'r') turns the azimuth by -a, i.e. equals our rotator(-a)
    m = _m(Mueller("c").retarder_circular(R=2 * 0.3, kind="r"))[0]
    assert np.allclose(m, rotator(-0.3), atol=1e-12)


def test_pypol_from_jones_and_dop() -> None:
    _pp()
    from py_pol.jones_matrix import Jones_matrix
    from py_pol.mueller import Mueller
    from py_pol.stokes import Stokes

    j = jones_retarder(0.3, 1.1)
    jm = Jones_matrix("j").from_matrix(j)
    m = _m(Mueller("m").from_Jones(jm))[0]
    assert np.allclose(m, jones_to_mueller(j), atol=1e-12)
    s = Stokes("s").general_azimuth_ellipticity(
        azimuth=0.4, ellipticity=0.2, intensity=2.0, degree_pol=0.6
    )
    ours = stokes_from_angles(0.4, 0.2, 0.6, 2.0)
    assert np.allclose(np.asarray(s.M).reshape(4), ours, atol=1e-12)
    assert np.isclose(s.parameters.degree_polarization(), degree_of_polarization(ours))


def test_pypolar_retarder_rotation_polarizer() -> None:
    _pypolar()
    import pypolar.mueller as pm

    for t, d in zip(THETAS, DELTAS, strict=True):
        assert np.allclose(pm.op_retarder(t, d), retarder(t, d), atol=1e-12)
        assert np.allclose(pm.op_linear_polarizer(t), polarizer(t), atol=1e-12)
        # pypolar's op_rotation(t) is the frame rotation R(t): our rotator(-t)
        assert np.allclose(pm.op_rotation(t), rotator(-t), atol=1e-12)
    assert np.allclose(pm.op_quarter_wave_plate(0.3), quarter_wave_plate(0.3), atol=1e-12)
