"""The optical-aware target: hardware-aware training with differentiable surrogates of the
optical core (:mod:`.surrogate`), and its typed options and program (:mod:`.target`)."""

from rsgn.backends.optical_aware.surrogate import SurrogateReadout, ste_quantize, surrogate_table
from rsgn.backends.optical_aware.target import (
    OpticalAwareBackend,
    OpticalAwareOptions,
    OpticalAwareProgram,
)

__all__ = [
    "OpticalAwareBackend",
    "OpticalAwareOptions",
    "OpticalAwareProgram",
    "SurrogateReadout",
    "ste_quantize",
    "surrogate_table",
]
