"""exp(-d / tau): lookup table with linear interpolation vs the closed form ``tl.exp``.

Closed form (``mode="exp"``, the plain version):

    y = exp(-d / tau),                      dy/dd = -y / tau

Table (``mode="lut"``, the primitive): T samples of exp(-u) on a uniform grid over
u = d / tau in [0, u_max], h = u_max / (T - 1), t_j = exp(-j h), linear interpolation

    u = d / tau,  j = min(floor(u / h), T - 2),  f = u / h - j
    y = t_j + f (t_{j+1} - t_j)                 for 0 <= u < u_max,   y = 0 for u >= u_max

(inputs d < 0 are clamped to 0). The table is in units of u, so one table serves every tau.
Backward of the table path, ``grad=`` (a switch):

- ``"slope"`` (default): the *table slope*, the exact derivative of the interpolant,
  dy/dd = (t_{j+1} - t_j) / (h tau) (0 for u >= u_max); ``gradcheck`` holds for the LUT forward,
  but it differs from the true derivative by O(h) relative (h/2 at most), not O(h^2);
- ``"value"``: dy/dd = -y_lut / tau from the interpolated value (the closed-form derivative
  evaluated through the table): O(h^2) relative like the forward, but not the derivative of
  the piecewise-linear forward (``gradcheck`` fails by O(h)).

Error of the interpolant (exp is convex, f''/f = 1): max relative error h^2 / 8 to leading
order (cosh(h/2) - 1 exactly at mid-cell; rigorous bound h^2 e^h / 8) inside the table, plus
the truncation exp(-u_max) (absolute) beyond it. T = 256 over [0, 20] -> 7.7e-4, T = 4096 ->
3.0e-6, T = 65536 -> 1.2e-8 (below float32 rounding). Measured in float32 under the interpreter
(d / tau uniform in [0, 20], studies/gpu_kernels/primitives_cpu.json), max rel error forward /
slope-backward: T = 256 7.7e-4 / 4.0e-2, 1024 4.8e-5 / 9.8e-3, 4096 3.6e-6 / 2.5e-3,
65536 7.1e-7 / 4.8e-4 (``grad="value"``: same as the forward); closed form 1.8e-7 / 1.8e-7.

``tau`` travels in a tensor (never as a Python float: Triton passes those as fp32 scalars on a
GPU, which would spoil float64). No gradient w.r.t. tau.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import check_device, compute_dtype

MODES = ("exp", "lut")
GRADS = ("slope", "value")
DEFAULT_SIZE = 4096
DEFAULT_U_MAX = 20.0
_BLOCK = 1024

_TABLES: dict[tuple, torch.Tensor] = {}


def exp_table(
    size: int = DEFAULT_SIZE,
    u_max: float = DEFAULT_U_MAX,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Table t_j = exp(-j h), h = u_max / (size - 1), computed in float64 (cached)."""
    if size < 2:
        raise ValueError("the table needs at least 2 entries")
    key = (int(size), float(u_max), dtype, str(device))
    t = _TABLES.get(key)
    if t is None:
        u = torch.linspace(0.0, float(u_max), int(size), dtype=torch.float64)
        t = torch.exp(-u).to(dtype=dtype, device=device)
        _TABLES[key] = t
    return t


@triton.jit
def _lut_lookup(u, t_ptr, T, inv_h):
    """(value, slope d/du) of the table's linear interpolant at u >= 0 (0 beyond the table)."""
    pos = u * inv_h
    inside = pos < (T - 1)
    j = tl.minimum(pos, T - 2).to(tl.int32)
    j = tl.maximum(j, 0)
    f = pos - j
    t0 = tl.load(t_ptr + j)
    t1 = tl.load(t_ptr + j + 1)
    dt = t1 - t0
    y = tl.where(inside, t0 + f * dt, 0.0)
    dydu = tl.where(inside, dt * inv_h, 0.0)
    return y, dydu


@triton.jit
def _exp_fwd_kernel(d_ptr, out_ptr, par_ptr, t_ptr, n, T, LUT: tl.constexpr, BLOCK: tl.constexpr):
    """par = [1/tau, 1/h] (tensor: full precision in float64)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    d = tl.load(d_ptr + offs, mask=m, other=0.0)
    inv_tau = tl.load(par_ptr)
    u = tl.maximum(d, 0.0) * inv_tau
    if LUT:
        inv_h = tl.load(par_ptr + 1)
        y, _ = _lut_lookup(u, t_ptr, T, inv_h)
    else:
        y = tl.exp(-u)
    tl.store(out_ptr + offs, y, mask=m)


@triton.jit
def _exp_bwd_kernel(
    d_ptr,
    go_ptr,
    gd_ptr,
    par_ptr,
    t_ptr,
    n,
    T,
    LUT: tl.constexpr,
    FROM_VALUE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    d = tl.load(d_ptr + offs, mask=m, other=0.0)
    go = tl.load(go_ptr + offs, mask=m, other=0.0)
    inv_tau = tl.load(par_ptr)
    u = tl.maximum(d, 0.0) * inv_tau
    if LUT:
        inv_h = tl.load(par_ptr + 1)
        y, dydu = _lut_lookup(u, t_ptr, T, inv_h)
        if FROM_VALUE:
            dydu = -y
    else:
        dydu = -tl.exp(-u)
    g = tl.where(d >= 0.0, go * dydu * inv_tau, 0.0)  # clamp at 0: no gradient below
    tl.store(gd_ptr + offs, g, mask=m)


def _params(d: torch.Tensor, tau, size: int, u_max: float):
    cd = compute_dtype(d.dtype)
    tau_t = torch.as_tensor(tau, dtype=torch.float64).reshape(())
    h = float(u_max) / (int(size) - 1)
    par = torch.stack([1.0 / tau_t, torch.tensor(1.0 / h, dtype=torch.float64)]).to(cd)
    return cd, par.to(d.device).contiguous()


def exp_decay_forward(
    d: torch.Tensor,
    tau: float | torch.Tensor,
    *,
    mode: str = "exp",
    size: int = DEFAULT_SIZE,
    u_max: float = DEFAULT_U_MAX,
) -> torch.Tensor:
    """Launcher: exp(-d / tau) elementwise (no autograd)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_device(d)
    cd, par = _params(d, tau, size, u_max)
    dc = d.detach().to(cd).contiguous()
    tab = exp_table(size, u_max, dtype=cd, device=d.device)
    out = torch.empty_like(dc)
    n = dc.numel()
    if n:
        _exp_fwd_kernel[(triton.cdiv(n, _BLOCK),)](
            dc, out, par, tab, n, int(size), LUT=mode == "lut", BLOCK=_BLOCK
        )
    return out


def exp_decay_backward(
    d: torch.Tensor,
    grad_out: torch.Tensor,
    tau: float | torch.Tensor,
    *,
    mode: str = "exp",
    size: int = DEFAULT_SIZE,
    u_max: float = DEFAULT_U_MAX,
    grad: str = "slope",
) -> torch.Tensor:
    """Launcher: dL/dd = grad_out * dy/dd (``mode="lut"``: table slope or -y_lut / tau)."""
    if grad not in GRADS:
        raise ValueError(f"grad must be one of {GRADS}, got {grad!r}")
    check_device(d, grad_out)
    cd, par = _params(d, tau, size, u_max)
    dc = d.detach().to(cd).contiguous()
    go = grad_out.detach().to(cd).contiguous()
    tab = exp_table(size, u_max, dtype=cd, device=d.device)
    gd = torch.empty_like(dc)
    n = dc.numel()
    if n:
        _exp_bwd_kernel[(triton.cdiv(n, _BLOCK),)](
            dc,
            go,
            gd,
            par,
            tab,
            n,
            int(size),
            LUT=mode == "lut",
            FROM_VALUE=grad == "value",
            BLOCK=_BLOCK,
        )
    return gd


class ExpDecay(torch.autograd.Function):
    """y = exp(-d / tau) (closed form or table), differentiable in d."""

    @staticmethod
    def forward(ctx, d, tau, mode, size, u_max, grad):  # noqa: D102
        ctx.save_for_backward(d)
        ctx.cfg = (tau, mode, size, u_max, grad)
        return exp_decay_forward(d, tau, mode=mode, size=size, u_max=u_max).to(d.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        (d,) = ctx.saved_tensors
        tau, mode, size, u_max, grad = ctx.cfg
        gd = exp_decay_backward(d, grad_out, tau, mode=mode, size=size, u_max=u_max, grad=grad)
        return gd.to(d.dtype), None, None, None, None, None


def exp_decay(
    d: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    *,
    mode: str = "exp",
    size: int = DEFAULT_SIZE,
    u_max: float = DEFAULT_U_MAX,
    grad: str = "slope",
) -> torch.Tensor:
    """exp(-d / tau) with ``mode="exp"`` (closed form, default) or ``"lut"`` (table of ``size``
    entries over d / tau in [0, u_max], linear interpolation; derivative ``grad="slope"``, the
    table slope, or ``"value"``, -y_lut / tau)."""
    if grad not in GRADS:
        raise ValueError(f"grad must be one of {GRADS}, got {grad!r}")
    return ExpDecay.apply(d, tau, mode, int(size), float(u_max), grad)


def exp_decay_reference(d: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Torch reference exp(-max(d, 0) / tau)."""
    return torch.exp(-d.clamp_min(0.0) / tau)


def lut_reference(
    d: torch.Tensor, tau: float = 1.0, *, size: int = DEFAULT_SIZE, u_max: float = DEFAULT_U_MAX
) -> torch.Tensor:
    """Float64 torch model of the table's interpolant (what ``mode="lut"`` should return)."""
    u = d.double().clamp_min(0.0) / float(tau)
    h = float(u_max) / (int(size) - 1)
    pos = u / h
    j = pos.clamp_max(size - 2).floor().clamp_min(0)
    f = pos - j
    t0, t1 = torch.exp(-j * h), torch.exp(-(j + 1) * h)
    return torch.where(pos < size - 1, t0 + f * (t1 - t0), torch.zeros_like(u))
