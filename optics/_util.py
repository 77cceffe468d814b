"""Small array helpers shared by the optics modules (private)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def as_float(x: ArrayLike) -> FloatArray:
    """Return ``x`` as a float64 array (no copy when already float64)."""
    return np.asarray(x, dtype=np.float64)


def as_vec3(v: ArrayLike, name: str) -> FloatArray:
    """Return ``v`` as a float64 array whose last axis has length 3, or raise ``ValueError``."""
    a = as_float(v)
    if a.ndim == 0 or a.shape[-1] != 3:
        raise ValueError(f"{name} must have a last axis of length 3, got shape {a.shape}")
    return a


def as_stokes(s: ArrayLike, name: str = "stokes") -> FloatArray:
    """Return ``s`` as a float64 array whose last axis has length 4, or raise ``ValueError``."""
    a = as_float(s)
    if a.ndim == 0 or a.shape[-1] != 4:
        raise ValueError(f"{name} must have a last axis of length 4 (S0..S3), got shape {a.shape}")
    return a


def as_mueller(m: ArrayLike, name: str = "mueller") -> FloatArray:
    """Return ``m`` as a float64 array of shape (..., 4, 4), or raise ``ValueError``."""
    a = as_float(m)
    if a.ndim < 2 or a.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must have shape (..., 4, 4), got shape {a.shape}")
    return a


def unit_vectors(v: ArrayLike, name: str) -> FloatArray:
    """Normalise 3-vectors along the last axis; raise ``ValueError`` on a zero vector."""
    a = as_vec3(v, name)
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    if np.any(n == 0.0) or not np.all(np.isfinite(n)):
        raise ValueError(f"{name} must be finite, non-zero 3-vectors")
    return a / n


def skew(u: FloatArray) -> FloatArray:
    """Cross-product matrix [u]_x with [u]_x v = u x v, batched over leading dims."""
    out = np.zeros(u.shape[:-1] + (3, 3))
    out[..., 0, 1] = -u[..., 2]
    out[..., 0, 2] = u[..., 1]
    out[..., 1, 0] = u[..., 2]
    out[..., 1, 2] = -u[..., 0]
    out[..., 2, 0] = -u[..., 1]
    out[..., 2, 1] = u[..., 0]
    return out


def block4(m00: FloatArray, row: FloatArray, col: FloatArray, m3: FloatArray) -> FloatArray:
    """Assemble (..., 4, 4) from M00 (...), first row (..., 3), first column (..., 3), block (...,
    3, 3).
    """
    shape = np.broadcast_shapes(m00.shape, row.shape[:-1], col.shape[:-1], m3.shape[:-2])
    out = np.zeros(shape + (4, 4))
    out[..., 0, 0] = m00
    out[..., 0, 1:] = row
    out[..., 1:, 0] = col
    out[..., 1:, 1:] = m3
    return out
