"""Event coding: graded-spike payload quantisation and sigma-delta (send-on-change) coding.

Graded spikes carry a b-bit signed payload. In float mode a value ``y`` is sent as::

    q(y) = clip(rint(y / scale), -2**(b-1), 2**(b-1) - 1) * scale

so ``|q(y) - y| <= scale / 2`` inside the range (``bits=None`` sends ``y`` exactly). In fixed
mode the integer output saturates to the b-bit signed range.

Sigma-delta coding keeps, per neuron, the value ``r`` the receivers have reconstructed. Each
step a neuron whose quantised output ``q`` satisfies ``|q - r| > threshold`` sends the delta
``q - r`` and sets ``r = q``; otherwise it stays silent. Receivers integrate the deltas
(``acc += W^T delta``), so their input is ``W^T r`` with ``|r - q| <= threshold`` at every step.
Converged neurons go silent, which is where sigma-delta saves events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = ["PayloadCoding", "quantize_payload", "saturate", "SigmaDeltaState", "quantize_weights"]


@dataclass(frozen=True)
class PayloadCoding:
    """How graded neurons encode outputs into events.

    Attributes
    ----------
    bits : int or None
        Signed payload width; ``None`` sends exact float payloads (float mode only; fixed mode
        then uses the chip's ``max_payload_bits``).
    scale : float
        Float mode: value of one payload LSB.
    sigma_delta : bool
        Send only changes larger than ``threshold`` (see module docstring).
    threshold : float
        Sigma-delta threshold (value units in float mode, LSBs in fixed mode); >= 0.
    """

    bits: int | None = None
    scale: float = 1.0
    sigma_delta: bool = False
    threshold: float = 0.0

    def validate(self, max_bits: int) -> None:
        """Check against the chip's ``max_payload_bits``; raises :class:`ConfigError`."""
        if self.bits is not None:
            if int(self.bits) < 2:
                raise ConfigError(f"payload bits must be >= 2 for graded spikes, got {self.bits}")
            if int(self.bits) > max_bits:
                raise ConfigError(f"payload bits {self.bits} > chip max_payload_bits {max_bits}")
        if not self.scale > 0:
            raise ConfigError(f"payload scale must be > 0, got {self.scale}")
        if not self.threshold >= 0:
            raise ConfigError(f"sigma-delta threshold must be >= 0, got {self.threshold}")


def saturate(v: np.ndarray, bits: int) -> np.ndarray:
    """Clip integers to the signed ``bits`` range ``[-2**(bits-1), 2**(bits-1) - 1]``."""
    hi = (1 << (int(bits) - 1)) - 1
    return np.clip(v, -hi - 1, hi)


def quantize_payload(y: np.ndarray, bits: int | None, scale: float, fixed: bool) -> np.ndarray:
    """Quantise graded outputs to payloads (see module docstring for the formula)."""
    if fixed:
        if bits is None:
            raise ConfigError("fixed-point payloads need a bit width")
        return saturate(np.asarray(y, dtype=np.int64), bits)
    if bits is None:
        return np.asarray(y, dtype=np.float64)
    return saturate(np.rint(np.asarray(y) / scale), bits) * scale


class SigmaDeltaState:
    """Per-neuron reconstruction ``r`` shared by a sender and its receivers."""

    def __init__(self, n: int, fixed: bool) -> None:
        self.r = np.zeros(n, dtype=np.int64 if fixed else np.float64)

    def encode(
        self, idx: np.ndarray, q: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(sending neuron indices, deltas)`` and update ``r`` for the senders."""
        d = q - self.r[idx]
        m = np.abs(d) > threshold
        sidx = idx[m]
        self.r[sidx] = q[m]
        return sidx, d[m]


def quantize_weights(
    w: np.ndarray, bits: int, scale: float | None = None
) -> tuple[np.ndarray, float]:
    """Symmetric uniform quantisation of float weights to signed ``bits`` integers.

    ``w_int = clip(rint(w / scale))`` with ``scale = max|w| / (2**(bits-1) - 1)`` by default.

    Returns
    -------
    (numpy.ndarray of int64, float)
        Integer weights and the scale (``w ~= w_int * scale``).
    """
    w = np.asarray(w, dtype=np.float64)
    hi = (1 << (int(bits) - 1)) - 1
    if scale is None:
        m = float(np.max(np.abs(w))) if w.size else 0.0
        scale = m / hi if m > 0 else 1.0
    return saturate(np.rint(w / scale).astype(np.int64), bits), float(scale)
