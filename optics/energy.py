r"""Energy and time helpers of optical devices.

* :func:`laser_electrical_energy`: the electrical energy a laser draws to emit an optical power
  for a time, :math:`E = P_{opt}\,t/\eta_{WPE}`;
* :func:`propagation_delay`: time of flight :math:`n_g L / c`.

The optical target's cost model (``rsgn.backends.optical.cost``) prices its counted events with
these; the optics library itself keeps no event table.
"""

from __future__ import annotations

__all__ = [
    "SPEED_OF_LIGHT",
    "laser_electrical_energy",
    "propagation_delay",
]

SPEED_OF_LIGHT = 299_792_458.0  # m/s (SI exact)


def laser_electrical_energy(
    optical_power: float, duration: float, wall_plug_efficiency: float
) -> float:
    r"""Electrical energy drawn by a laser: :math:`E = P_{opt}\,t / \eta_{WPE}` (J)."""
    if optical_power < 0 or duration < 0:
        raise ValueError("optical_power and duration must be >= 0")
    if not 0 < wall_plug_efficiency <= 1:
        raise ValueError("wall_plug_efficiency must lie in (0, 1]")
    return optical_power * duration / wall_plug_efficiency


def propagation_delay(path_length: float, group_index: float = 1.0) -> float:
    r"""Time of flight :math:`n_g L / c` (s); 30 cm of free space is about 1 ns."""
    if path_length < 0 or group_index < 1:
        raise ValueError("path_length must be >= 0 and group_index >= 1")
    return group_index * path_length / SPEED_OF_LIGHT
