"""Shared Triton helpers: interpreter detection and portable math (``tl.exp``/``tl.log``/
``tl.sqrt`` only, so they run under ``TRITON_INTERPRET=1``, where libdevice and inline asm fail).

Measured accuracy of these formulas (reference/hyperbolic-numerics.md §5): log1p 2.3e-7,
tanh 2.8e-7, asinh 2.4e-7 max relative error in float32.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_device(*tensors: torch.Tensor) -> None:
    """Kernels need CUDA tensors, or CPU tensors under the interpreter."""
    for t in tensors:
        if t.device.type != "cuda" and not interpreting():
            raise RuntimeError(
                f"Triton kernels need CUDA tensors (got {t.device}); set TRITON_INTERPRET=1 "
                "to run them on the CPU"
            )


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Kernels compute in float64 for float64 inputs and in float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


_SCALARS: dict = {}


def device_scalars(
    values: tuple[float, ...], device: torch.device | str, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Kernel scalars as a cached device tensor: created once per (values, device), so a step
    makes no host-to-device copy (which would stall the host, and is illegal inside a CUDA
    graph capture)."""
    key = (values, str(device), dtype)
    t = _SCALARS.get(key)
    if t is None:
        if len(_SCALARS) > 256:
            _SCALARS.clear()
        t = _SCALARS[key] = torch.tensor(values, dtype=dtype, device=device)
    return t


def next_pow2(n: int, floor: int = 1) -> int:
    return max(floor, triton.next_power_of_2(max(1, int(n))))


@triton.jit
def log1p(u):
    """log(1 + u) by Goldberg's trick: log(w) * u / (w - 1), w = 1 + u (exact u when w == 1)."""
    w = 1.0 + u
    wm1 = w - 1.0
    safe = tl.where(wm1 == 0.0, 1.0, wm1)
    return tl.where(wm1 == 0.0, u, tl.log(w) * (u / safe))


@triton.jit
def expm1(x):
    """exp(x) - 1 by Kahan's trick: (u - 1) x / log(u), u = exp(x)."""
    u = tl.exp(x)
    um1 = u - 1.0
    lu = tl.log(u)
    safe = tl.where(lu == 0.0, 1.0, lu)
    r = tl.where(um1 == -1.0, -1.0, um1 * (x / safe))
    return tl.where(u == 1.0, x, r)


@triton.jit
def asinh(a):
    """asinh(a) = sign(a) log1p(|a| + a^2 / (1 + sqrt(1 + a^2))); log(2|a|) for |a| > 1e15."""
    b = tl.abs(a)
    big = b > 1e15
    bs = tl.where(big, 1.0, b)
    r = log1p(bs + bs * bs / (1.0 + tl.sqrt(1.0 + bs * bs)))
    r = tl.where(big, tl.log(2.0 * tl.where(big, b, 1.0)), r)
    return tl.where(a < 0, -r, r)


@triton.jit
def tanh_portable(x):
    """tanh(x) = sign(x) (-expm1(-2|x|)) / (2 + expm1(-2|x|)) (never 2 sigmoid(2x) - 1)."""
    e = expm1(-2.0 * tl.abs(x))
    t = -e / (2.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def tanh_gate(x, FAST: tl.constexpr):
    """tanh for *gates only* (never coordinates): PTX ``tanh.approx.f32`` (rel. error ~2^-11)
    when ``FAST`` (CUDA only; the interpreter has no inline asm), else :func:`tanh_portable`."""
    if FAST:
        y = tl.inline_asm_elementwise(
            "tanh.approx.f32 $0, $1;",
            "=f,f",
            [x.to(tl.float32)],
            dtype=tl.float32,
            is_pure=True,
            pack=1,
        )
        return y.to(x.dtype)
    else:
        return tanh_portable(x)
