"""The Triton backend: the torch backend's op sequence with the hot inner loops as Triton
kernels (``rsgn.kernels``); everything without a kernel is inherited from :class:`TorchBackend`.

==========  =================================================================================
op          Triton kernel (reference: the torch backend)
==========  =================================================================================
graph       edge distances d_H(p_i, p_j) on the k-in-edge topology (``kernels.distance``,
            2 asinh form, backward w.r.t. positions and conformal factors)
ignite      the selection pass: min over tokens of delta and its argmin, fused
            (``kernels.ignite``), then the k-winners (``kernels.select``)
propagate   the message sum out[dst] += w g[src] + b_h (``kernels.spmm``, CSR pull, no atomics)
            and the fused |h~| + soft threshold (``kernels.gate``)
select      exact radix select / statistical top-k per sample (``kernels.select``)
==========  =================================================================================

Runs on CUDA, or on the CPU under Triton's interpreter (``TRITON_INTERPRET=1``; slow, for
tests). ``fast_tanh=True`` uses PTX ``tanh.approx.f32`` for the gate on CUDA (off by default:
not yet measured on a GPU).
"""

from __future__ import annotations

import os

import torch

from rsgn.backends.base import Capabilities
from rsgn.backends.selection import mask_to_ids
from rsgn.backends.torch_backend import TorchBackend


class TritonBackend(TorchBackend):
    """Triton kernels for graph distances, ignition's selection pass, select, the message sum
    and the soft threshold; the torch backend for the rest."""

    name = "triton"

    def __init__(
        self,
        device: str | torch.device | None = None,
        preset: str | None = None,
        fast_tanh: bool = False,
    ) -> None:
        super().__init__(device=device, preset=preset)
        self.fast_tanh = bool(fast_tanh)
        from rsgn.kernels import distance, gate, ignite, select, spmm

        self._k_distance, self._k_gate, self._k_ignite = distance, gate, ignite
        self._k_select, self._k_spmm = select, spmm

    @classmethod
    def available(cls) -> tuple[bool, str]:
        interp = os.environ.get("TRITON_INTERPRET", "0") == "1"
        if not (torch.cuda.is_available() or interp):
            return False, "needs a CUDA GPU, or TRITON_INTERPRET=1 to run the kernels on the CPU"
        try:
            import triton  # noqa: F401
        except ImportError as exc:
            return False, f"triton is not installed ({exc}); pip install 'triton>=3.0'"
        return True, ""

    def capabilities(self) -> Capabilities:
        caps = super().capabilities()
        caps.devices = ("cuda",) if torch.cuda.is_available() else ("cpu (TRITON_INTERPRET=1)",)
        caps.metrics["latency"] = "measured (wall clock; CUDA-synchronised on GPU)"
        caps.notes = (
            "Triton kernels for graph distances, ignition selection, select, message sum, "
            "soft threshold; other ops from the torch backend"
        )
        return caps

    # ---------------------------------------------------------------------------- hooks
    def edge_distances(self, x, a, in_idx):
        """Edge distances from the distance kernel (2 asinh form, with backward)."""
        n, k = in_idx.shape
        rows = torch.arange(n, device=in_idx.device).unsqueeze(1).expand(n, k)
        return self._k_distance.pair_distance(x, a, rows, in_idx)

    @torch.no_grad()
    def nearest_spark(self, sparks, spark_a, x, a):
        """The fused ignite kernel: min over tokens of delta and its argmin."""
        return self._k_ignite.ignite_min(sparks, spark_a, x, a)

    def message_sum(self, dst, src_ptr, w, g, bias, m):
        """The CSR-pull message-sum kernel (no atomics), with backward."""
        return self._k_spmm.edge_spmm(dst, src_ptr, w, g, bias, m)

    def soft_threshold(self, alpha_prev, htilde, theta, *, gamma, temperature):
        """The fused |h~| + soft threshold kernel (PTX tanh on CUDA when ``fast_tanh``)."""
        return self._k_gate.soft_threshold(
            alpha_prev, htilde, theta, gamma=gamma, temperature=temperature, fast=self.fast_tanh
        )

    def select_rows(self, scores, rows, n_rows, k, method):
        """Radix select / statistical top-k over the ragged candidate rows as kernels."""
        ptr = self._k_select.rows_ptr(rows, n_rows)
        if method == "radix":
            return self._k_select.radix_select_ragged(scores, ptr, k)
        if method == "stat":
            return self._k_select.statistical_select_ragged(scores.double(), ptr, k)
        raise ValueError(f"unknown selection method {method!r} (radix, stat)")

    def _select_dense(self, score: torch.Tensor, cap: int, method: str):
        if method == "radix":
            mask = self._k_select.radix_select_mask(score.detach(), cap)
            return mask_to_ids(mask, width=min(cap, score.shape[1]))
        if method == "stat":
            mask = self._k_select.statistical_mask(score.detach(), cap)
            return mask_to_ids(mask)
        raise ValueError(f"unknown selection method {method!r} (radix, stat)")
