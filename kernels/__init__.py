"""Triton GPU kernels for the hot RSGN ops; imports only torch and triton (never the model or
the backends). Each module is a stack: private ``@triton.jit`` kernel -> launcher ->
``torch.autograd.Function`` -> torch reference (the ``*_reference`` functions).

- :mod:`.distance`  Poincaré distance of gathered pairs, 2 asinh form, backward w.r.t. x and a
- :mod:`.ignite`    min over tokens of delta = |s - p|^2 / (a_s a_p) and its argmin, fused
- :mod:`.select`    exact radix select (histogram passes) and statistical top-k threshold
- :mod:`.spmm`      edge message sum out[dst] += w g[src] + b (CSR pull) with backward
- :mod:`.gate`      fused |h~| + soft threshold, optional PTX ``tanh.approx`` on CUDA

Import a submodule only where triton is wanted: ``import rsgn`` does not import this package's
submodules. Under ``TRITON_INTERPRET=1`` the kernels run on CPU tensors.
"""
