"""The neuromorphic target: RSGN on a simulated event-driven chip (see :mod:`.target`)."""

from rsgn.backends.neuromorphic.options import NeuromorphicOptions
from rsgn.backends.neuromorphic.program import NeuromorphicProgram
from rsgn.backends.neuromorphic.target import NeuromorphicBackend

__all__ = ["NeuromorphicBackend", "NeuromorphicOptions", "NeuromorphicProgram"]
