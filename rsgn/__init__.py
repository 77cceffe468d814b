"""rsgn: Resonant Sparse Geometry Networks on torch, Triton, optical and neuromorphic targets."""

__version__ = "0.2.0"
