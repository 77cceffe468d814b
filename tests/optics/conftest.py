"""Shared fixtures for the optics physics tests: a seeded generator and random physical objects."""

from __future__ import annotations

import numpy as np
import pytest


class RandomOptics:
    """Random physical objects drawn from one seeded numpy Generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def jones(self, n: int) -> np.ndarray:
        """Up to n random complex Jones matrices with |det J| > 0.05."""
        j = self.rng.standard_normal((n, 2, 2)) + 1j * self.rng.standard_normal((n, 2, 2))
        return j[np.abs(np.linalg.det(j)) > 0.05]

    def stokes(self, n: int, pmax: float = 0.95) -> np.ndarray:
        """n partially polarised Stokes vectors, DOP in (0, pmax), S0 in (0.5, 2)."""
        v = self.unit(n)
        p = self.rng.uniform(0.0, pmax, n)
        s0 = self.rng.uniform(0.5, 2.0, n)
        return np.concatenate([s0[:, None], (s0 * p)[:, None] * v], axis=-1)

    def ball(self, n: int, rmax: float = 0.95) -> np.ndarray:
        """n random points of the open unit ball with radius below rmax."""
        return self.rng.uniform(0.0, rmax, n)[:, None] * self.unit(n)

    def unit(self, n: int) -> np.ndarray:
        """n random unit 3-vectors."""
        v = self.rng.standard_normal((n, 3))
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240531)


@pytest.fixture
def make(rng: np.random.Generator) -> RandomOptics:
    return RandomOptics(rng)
