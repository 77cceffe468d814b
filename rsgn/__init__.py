"""rsgn: Resonant Sparse Geometry Networks on torch, Triton, optical and neuromorphic targets.

The Python API (:mod:`rsgn.api`): ``rsgn.run_config``, ``rsgn.task``, ``rsgn.train``,
``rsgn.load``, ``rsgn.evaluate``, ``rsgn.compare``, ``rsgn.targets``. They load on first use,
so ``import rsgn.optics`` or ``import rsgn.neuromorphic`` (the engines) import no torch, and
``import rsgn`` imports neither triton nor simpy.
"""

from typing import Any

__version__ = "0.2.0"

API = ("Comparison", "Run", "compare", "evaluate", "load", "run_config", "targets", "task", "train")

__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from rsgn import api

        return getattr(api, name)
    raise AttributeError(f"module 'rsgn' has no attribute {name!r}")
