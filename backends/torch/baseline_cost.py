"""Baselines (Transformer, LSTM, MLP, MoE, conv) on the same electronic cost model as the RSGN.

A baseline is a plain torch module, so its work is counted from the operators it runs, per
batch, by :func:`count_module`:

- multiply-accumulates: ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2), with
  formulas for the two fused CPU kernels it does not know: multi-head attention's fast path
  (``aten._native_multi_head_attention``: QKV projections 3 B T E^2, scores and weighted sum
  2 B T S E, output projection B T E^2) and oneDNN's LSTM layer (``aten.mkldnn_rnn_layer``:
  T B 4h (in + h) per layer and direction);
- transcendentals: one per output element of exp, log, tanh, sigmoid, GELU, erf, sin, cos,
  sqrt / rsqrt, softmax, one per row of a layer norm, and 5 h per LSTM time step and sample
  (three sigmoid gates, two tanh);
- element-wise adds / multiplies / comparisons: one per output element of add, sub, mul,
  div, mean / sum reductions (per input element), max-pool, top-k inputs, and six per element of
  a layer norm (as the RSGN's update is charged);
- SRAM words: every parameter once per batch, plus one word per element written by a
  counted operator (activations stream through on-chip memory);
- DRAM words: the input tokens.

These become ledger entries of the ``electronic_45nm`` events with the same per-event energies
as the RSGN's (:mod:`rsgn.backends.torch.cost`): the input under ``input``, everything else
under ``propagate`` (a baseline's layers are its propagation).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from rsgn.backends.cost import CostLedger

_TRANSCENDENTAL = {
    "aten.exp",
    "aten.log",
    "aten.tanh",
    "aten.sigmoid",
    "aten.gelu",
    "aten.erf",
    "aten.sin",
    "aten.cos",
    "aten.sqrt",
    "aten.rsqrt",
    "aten._softmax",
    "aten._log_softmax",
}
_ELEMENTWISE = {
    "aten.add",
    "aten.sub",
    "aten.mul",
    "aten.div",
    "aten.relu",
    "aten.maximum",
    "aten.minimum",
    "aten.where",
}
_REDUCE = {"aten.mean", "aten.sum", "aten.amax", "aten.max", "aten.topk", "aten.max_pool1d"}
_MATMUL = {
    "aten.mm",
    "aten.addmm",
    "aten.bmm",
    "aten.baddbmm",
    "aten.convolution",
    "aten._native_multi_head_attention",
    "aten.mkldnn_rnn_layer",
}


def _mha_flops(query, key, value, embed_dim, num_head, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of multi-head attention's fused forward (2 x MACs); arguments are shapes."""
    b, t, e = query
    s = key[1]
    macs = 3 * b * t * e * e + 2 * b * t * s * e + b * t * e * e
    return 2 * macs


def _lstm_flops(inp, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of one oneDNN LSTM layer and direction: T B 4h (in + h) MACs; arguments are
    shapes."""
    steps_batch = inp[0] * inp[1]
    four_h, n_in = w_ih
    return 2 * steps_batch * four_h * (n_in + w_hh[1])


def _custom_mapping() -> dict[Any, Any]:
    ops = torch.ops.aten
    out = {}
    if hasattr(ops, "_native_multi_head_attention"):
        out[ops._native_multi_head_attention] = _mha_flops
    if hasattr(ops, "mkldnn_rnn_layer"):
        out[ops.mkldnn_rnn_layer] = _lstm_flops
    return out


class _ElementCounter(TorchDispatchMode):
    """Counts transcendental, element-wise and reduction work and written words by operator."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket) if hasattr(func, "overloadpacket") else str(func)
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        n_out = first.numel() if isinstance(first, torch.Tensor) else 0
        n_in = args[0].numel() if args and isinstance(args[0], torch.Tensor) else 0
        c = self.counts
        if name in _TRANSCENDENTAL:
            c["transcendental_fp32"] += n_out
            c["written"] += n_out
        elif name in _ELEMENTWISE:
            c["add_fp32"] += n_out
            c["written"] += n_out
        elif name in _REDUCE:
            c["add_fp32"] += n_in
            c["written"] += n_out
        elif name == "aten.native_layer_norm":
            rows = n_out // max(1, first.shape[-1]) if isinstance(first, torch.Tensor) else 0
            c["add_fp32"] += 6 * n_out
            c["transcendental_fp32"] += rows
            c["written"] += n_out
        elif name == "aten.mkldnn_rnn_layer":
            inp, hidden = args[0], args[2].shape[1]
            c["transcendental_fp32"] += 5 * inp.shape[0] * inp.shape[1] * hidden
            c["add_fp32"] += 4 * inp.shape[0] * inp.shape[1] * hidden
            c["written"] += n_out
        elif name in _MATMUL:
            c["written"] += n_out
        return out


def count_module(
    model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, int]]:
    """Run ``model(x, lengths)`` once, counting its work: (output, {event: count}) with the events
    ``mac_fp32``, ``add_fp32``, ``transcendental_fp32``, ``sram_word_32b`` and
    ``dram_word_32b`` of the electronic model (see the module docstring)."""
    flops = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    elems = _ElementCounter()
    with flops, elems:
        out = model(x) if lengths is None else model(x, lengths)
    params = sum(p.numel() for p in model.parameters())
    counts = {
        "mac_fp32": int(flops.get_total_flops() // 2),
        "add_fp32": int(elems.counts["add_fp32"]),
        "transcendental_fp32": int(elems.counts["transcendental_fp32"]),
        "sram_word_32b": int(params + elems.counts["written"]),
        "dram_word_32b": int(x.numel()),
    }
    return out, counts


def charge_module(ledger: CostLedger, counts: dict[str, int]) -> None:
    """Ledger entries of :func:`count_module`'s counts: the input under ``input``, the rest
    under ``propagate`` (a baseline's layers are its propagation)."""
    ledger.op("input").add("dram_word_32b", counts["dram_word_32b"])
    ledger.op("propagate")
    for ev in ("mac_fp32", "add_fp32", "transcendental_fp32", "sram_word_32b"):
        ledger.add(ev, counts[ev])
