"""Exceptions raised by the neuromorphic simulator.

Every error message is one line and names what is wrong (the core, the key, the limit).
"""

from __future__ import annotations

__all__ = ["NeuromorphicError", "CapacityError", "PresetError", "NetworkError", "ConfigError"]


class NeuromorphicError(Exception):
    """Base class of every error raised by :mod:`rsgn.neuromorphic`."""


class CapacityError(NeuromorphicError, ValueError):
    """A core (or the system) cannot hold what was placed on it.

    The message names the core and the limit, e.g.
    ``core 3 (chip 0, tile (1, 0)): 1100 neurons > max_neurons 1024``.
    """


class PresetError(NeuromorphicError, ValueError):
    """An unknown hardware preset, or an invalid value in a preset file (the key is named)."""


class NetworkError(NeuromorphicError, ValueError):
    """A malformed network description (shapes, indices, dtypes, duplicate synapses)."""


class ConfigError(NeuromorphicError, ValueError):
    """An invalid simulation option (the option is named)."""
