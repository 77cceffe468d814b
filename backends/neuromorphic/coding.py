r"""How the RSGN's values travel as graded payloads: width, per-channel LSBs, integer weights.

Float mode with ``payload_bits=None`` sends exact float64 payloads (LSB 1, no conversion).
With ``payload_bits = b`` every payload is quantised to b signed bits (saturating) with one LSB
per channel: state channel k sends rint(g_jk / s_k), the gate rint(alpha_j / s_gate), and
compartment (i, k), which only ever receives channel k, multiplies its accumulated input by s_k
(the scale a chip folds into the synaptic weight exponent). The LSBs:

- data-free bound (default): s_k = G_k / (2^(b-1) - 1) with G_k = |W_h[k]|_2 (sqrt(d) max|ln_w|
  + |ln_b|_2) >= |g_jk| after the LayerNorm, and s_gate = 1 / (2^(b-1) - 1) (alpha <= 1); a
  worst case, typically an order of magnitude above the payloads that occur;
- ``payload_scale``: one LSB for every channel;
- calibrated (``NeuromorphicProgram.calibrate``): s_k = headroom max|g_k| / (2^(b-1) - 1) from
  the payloads the chip program itself sends on calibration inputs (larger ones saturate).

``fixed`` mode runs the bit-accurate integer datapath: message weights quantised to the chip's
``weight_bits`` (w ~ w_int s_w), integer payloads, saturating accumulators; the node program
evaluates on the dequantised inputs. Without ``payload_bits`` its width is the accumulator's
headroom ``accumulator_bits - weight_bits - 1 - ceil(log2(fan-in + 2))``, capped by the chip's
``max_payload_bits``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from rsgn import neuromorphic as nm
from rsgn.backends.neuromorphic.mapping import Synapses
from rsgn.backends.neuromorphic.node_program import NodeParams
from rsgn.errors import RsgnError


@dataclass(frozen=True)
class Coding:
    """Payload width, per-channel LSBs and the simulator's synapse weights of one program."""

    fixed: bool
    bits: int | None
    chan_scale: np.ndarray
    """[d + 1] value of one LSB per channel (d state channels, then the gate)."""
    w_scale: float
    """Message weight LSB in fixed mode (1.0 in float mode)."""
    weights: np.ndarray
    """Synapse weights in :class:`~.mapping.Synapses` order (int64 in fixed mode)."""
    sigma_delta: bool
    sd_threshold: float

    @property
    def c(self) -> int:
        return int(self.chan_scale.size)

    @property
    def payload(self) -> nm.PayloadCoding:
        """The simulator's payload coding (payloads travel in LSB units, scale 1)."""
        return nm.PayloadCoding(
            bits=self.bits, scale=1.0, sigma_delta=self.sigma_delta, threshold=self.sd_threshold
        )

    def decode(self, idx: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The chip's accumulated inputs ``x`` of compartments ``idx`` in value units."""
        k = idx % self.c
        v = np.asarray(x, dtype=np.float64) * self.chan_scale[k]
        if self.fixed:
            v = np.where(k < self.c - 1, v * self.w_scale, v)
        return v

    def encode(self, idx: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Value-unit outputs of compartments ``idx`` in what the simulator takes (LSBs;
        integers in fixed mode)."""
        v = y / self.chan_scale[idx % self.c]
        return np.rint(v).astype(np.int64) if self.fixed else v

    def with_scales(self, chan: np.ndarray) -> Coding:
        return dataclasses.replace(self, chan_scale=np.asarray(chan, dtype=np.float64))


def payload_width(
    mode: str, payload_bits: int | None, core: nm.CoreSpec, max_fanin: int, preset: str
) -> int | None:
    """The graded payload width (module docstring); RsgnError when fixed mode leaves none."""
    if mode != "fixed" or payload_bits is not None:
        return payload_bits
    head = core.accumulator_bits - core.weight_bits - 1
    bits = min(core.max_payload_bits, head - math.ceil(math.log2(max_fanin + 2)))
    if bits < 2:
        raise RsgnError(
            f"preset {preset}: accumulator_bits {core.accumulator_bits} leave no room for a "
            "graded payload in fixed mode"
        )
    return bits


def lsb_max(bits: int) -> int:
    """Largest payload in LSBs, 2^(b-1) - 1."""
    return (1 << (bits - 1)) - 1


def bound_scales(p: NodeParams, bits: int) -> np.ndarray:
    """The data-free LSBs s_k = G_k / (2^(b-1) - 1) and s_gate = 1 / (2^(b-1) - 1)."""
    h_max = math.sqrt(p.d) * float(np.abs(p.ln_w).max()) + float(np.linalg.norm(p.ln_b))
    g = np.maximum(np.linalg.norm(p.w_h, axis=1) * h_max, 1e-12)
    return np.append(g, 1.0) / lsb_max(bits)


def peak_scales(peak: np.ndarray, bits: int, headroom: float) -> np.ndarray:
    """Calibrated LSBs: headroom max|g_k| / (2^(b-1) - 1); the gate keeps 1 / (2^(b-1) - 1)."""
    return np.append(np.maximum(np.asarray(peak) * headroom, 1e-12), 1.0) / lsb_max(bits)


def make_coding(
    *,
    mode: str,
    bits: int | None,
    payload_scale: float | None,
    sigma_delta: bool,
    sd_threshold: float,
    params: NodeParams,
    syn: Synapses,
    weight_bits: int,
) -> Coding:
    """The coding of a program (module docstring), LSBs from ``payload_scale`` or the bound."""
    c = params.d + 1
    if bits is None:
        chan = np.ones(c)
    elif payload_scale is not None:
        chan = np.full(c, float(payload_scale))
    else:
        chan = bound_scales(params, bits)
    fixed = mode == "fixed"
    if fixed:
        wq, w_scale = nm.quantize_weights(syn.msg_w, weight_bits)
        weights = syn.weights(wq.astype(np.int64))
    else:
        w_scale, weights = 1.0, syn.weights(syn.msg_w)
    return Coding(
        fixed=fixed,
        bits=bits,
        chan_scale=chan,
        w_scale=float(w_scale),
        weights=weights,
        sigma_delta=sigma_delta,
        sd_threshold=float(sd_threshold),
    )
