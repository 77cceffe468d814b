"""The soft threshold of a propagation step, fused with the norm of the messages:

    alpha_i = sigmoid((alpha_prev_i + gamma |h~_i| - theta_i) / T),   sigmoid(z) = (1 + tanh(z/2))/2

The tanh is a *gate* nonlinearity, so it may take the fast path: with ``fast=True`` on CUDA the
kernel uses PTX ``tanh.approx.f32`` (relative error ~2^-11) through
``tl.inline_asm_elementwise``; otherwise (always under the interpreter, which has no inline asm)
the portable expm1-based tanh (2.8e-7). Never used for coordinates.

Gradients (s = alpha, c = s (1 - s) / T, g = dL/dalpha):
    dL/dalpha_prev = g c,  dL/dtheta = -g c,  dL/dh~ = g c gamma h~ / |h~|  (0 at h~ = 0)
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsgn.kernels._common import (
    check_device,
    compute_dtype,
    device_scalars,
    interpreting,
    next_pow2,
    tanh_gate,
)

_BLOCK_M = 16


@triton.jit
def _gate_fwd_kernel(
    ap_ptr,
    h_ptr,
    th_ptr,
    out_ptr,
    norm_ptr,
    M,
    D,
    par_ptr,
    FAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mmask = offs_m < M
    h = tl.load(
        h_ptr + offs_m[:, None] * D + offs_d[None, :],
        mask=mmask[:, None] & (offs_d[None, :] < D),
        other=0.0,
    )
    nrm = tl.sqrt(tl.sum(h * h, axis=1))
    gamma = tl.load(par_ptr)
    inv_t = tl.load(par_ptr + 1)
    ap = tl.load(ap_ptr + offs_m, mask=mmask, other=0.0)
    th = tl.load(th_ptr + offs_m, mask=mmask, other=0.0)
    z = (ap + gamma * nrm - th) * inv_t
    s = 0.5 + 0.5 * tanh_gate(0.5 * z, FAST)
    tl.store(out_ptr + offs_m, s, mask=mmask)
    tl.store(norm_ptr + offs_m, nrm, mask=mmask)


@triton.jit
def _gate_bwd_kernel(
    go_ptr,
    s_ptr,
    h_ptr,
    norm_ptr,
    gh_ptr,
    gz_ptr,
    M,
    D,
    par_ptr,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mmask = offs_m < M
    m2 = mmask[:, None] & (offs_d[None, :] < D)
    go = tl.load(go_ptr + offs_m, mask=mmask, other=0.0)
    s = tl.load(s_ptr + offs_m, mask=mmask, other=0.0)
    nrm = tl.load(norm_ptr + offs_m, mask=mmask, other=0.0)
    gamma = tl.load(par_ptr)
    inv_t = tl.load(par_ptr + 1)
    gz = go * s * (1.0 - s) * inv_t
    tl.store(gz_ptr + offs_m, gz, mask=mmask)
    coef = tl.where(nrm > 0, gz * gamma / tl.where(nrm > 0, nrm, 1.0), 0.0)
    h = tl.load(h_ptr + offs_m[:, None] * D + offs_d[None, :], mask=m2, other=0.0)
    tl.store(gh_ptr + offs_m[:, None] * D + offs_d[None, :], coef[:, None] * h, mask=m2)


def fast_tanh_usable(device: torch.device) -> bool:
    """The PTX fast path needs a CUDA device and the compiler (not the interpreter)."""
    return device.type == "cuda" and not interpreting()


def _scalars(gamma: float, temperature: float, dtype, device) -> torch.Tensor:
    """(gamma, 1/T) as a device tensor in the compute dtype: Triton passes Python floats as
    fp32 scalars on CUDA, which would cost float64 inputs their precision."""
    return device_scalars((float(gamma), 1.0 / float(temperature)), device, dtype)


def soft_threshold_forward(
    alpha_prev: torch.Tensor,
    htilde: torch.Tensor,
    theta: torch.Tensor,
    gamma: float,
    temperature: float,
    fast: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launcher: (alpha [M], |h~| [M])."""
    check_device(alpha_prev, htilde, theta)
    m, d = htilde.shape
    cd = compute_dtype(htilde.dtype)
    out = torch.empty(m, device=htilde.device, dtype=cd)
    nrm = torch.empty_like(out)
    if m:
        _gate_fwd_kernel[(triton.cdiv(m, _BLOCK_M),)](
            alpha_prev.detach().to(cd).contiguous(),
            htilde.detach().to(cd).contiguous(),
            theta.detach().to(cd).contiguous(),
            out,
            nrm,
            m,
            d,
            _scalars(gamma, temperature, cd, htilde.device),
            FAST=bool(fast) and fast_tanh_usable(htilde.device) and cd == torch.float32,
            BLOCK_M=_BLOCK_M,
            BLOCK_D=next_pow2(d),
        )
    return out, nrm


class SoftThreshold(torch.autograd.Function):
    """alpha = sigmoid((alpha_prev + gamma |h~| - theta) / T), differentiable in alpha_prev,
    h~ and theta (per-row theta, gathered by the caller)."""

    @staticmethod
    def forward(ctx, alpha_prev, htilde, theta, gamma, temperature, fast):  # noqa: D102
        s, nrm = soft_threshold_forward(alpha_prev, htilde, theta, gamma, temperature, fast)
        ctx.save_for_backward(s, htilde, nrm)
        ctx.gamma, ctx.temperature = float(gamma), float(temperature)
        return s.to(htilde.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        s, htilde, nrm = ctx.saved_tensors
        m, d = htilde.shape
        cd = s.dtype
        gh = torch.zeros(m, d, device=s.device, dtype=cd)
        gz = torch.zeros(m, device=s.device, dtype=cd)
        if m:
            _gate_bwd_kernel[(triton.cdiv(m, _BLOCK_M),)](
                grad_out.detach().to(cd).contiguous(),
                s,
                htilde.detach().to(cd).contiguous(),
                nrm,
                gh,
                gz,
                m,
                d,
                _scalars(ctx.gamma, ctx.temperature, cd, s.device),
                BLOCK_M=_BLOCK_M,
                BLOCK_D=next_pow2(d),
            )
        return gz.to(htilde.dtype), gh.to(htilde.dtype), -gz.to(htilde.dtype), None, None, None


def soft_threshold(
    alpha_prev: torch.Tensor,
    htilde: torch.Tensor,
    theta: torch.Tensor,
    *,
    gamma: float,
    temperature: float,
    fast: bool = False,
) -> torch.Tensor:
    """Fused |h~| + gate; ``fast`` asks for the PTX tanh (taken only on CUDA, float32)."""
    return SoftThreshold.apply(alpha_prev, htilde, theta, gamma, temperature, fast)


def soft_threshold_reference(
    alpha_prev: torch.Tensor,
    htilde: torch.Tensor,
    theta: torch.Tensor,
    *,
    gamma: float,
    temperature: float,
) -> torch.Tensor:
    """Torch reference (``rsgn.ops.soft_threshold``)."""
    norm = torch.linalg.vector_norm(htilde, dim=-1)
    return torch.sigmoid((alpha_prev + gamma * norm - theta) / temperature)
