"""The triton target: rsgn.ops with Triton kernels for its hot primitives and a fused step
(imports triton only when a table or a program is built)."""

from rsgn.backends.triton.target import TritonBackend, TritonOptions, TritonProgram

__all__ = ["TritonBackend", "TritonOptions", "TritonProgram"]
